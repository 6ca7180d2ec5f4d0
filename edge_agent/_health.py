"""Agent health: process figures, and the Prometheus text exposition of every counter that counts.

The agent gathers its metrics as one flat mapping of names to numbers (outbox depth, age of the
oldest unsent batch, dropped, published, poll errors per device, RSS, CPU). The same mapping is
published on the MQTT health topic (contract v1 `Health`) and served locally at `/metrics` in the
Prometheus text format, so a gateway can be watched with or without the cloud.

Rules:
1. Metric names are snake_case; labels are given as `name{label="value"}` keys and rendered once.
2. Reading process figures never fails the caller: a figure that cannot be read is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABELED_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\\n]*)"\}$')
_HTTP_OK = 200
_HTTP_NOT_FOUND = 404

Metrics = Mapping[str, float]
"""Metric name (optionally with one label: `poll_errors_total{device="pump-7"}`) to value."""


def rss_bytes() -> int | None:
    """Resident set size of this process, from /proc (Linux); None where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:  # noqa: PTH123 - one small read
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class CpuMeter:
    """CPU use of this process as a percentage of one core, between two calls of `percent`."""

    clock: Callable[[], float] = time.monotonic
    _last_wall: float | None = None
    _last_cpu: float = 0.0

    def percent(self) -> float | None:
        """Percent of one core used since the previous call; None on the first call."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu, wall = usage.ru_utime + usage.ru_stime, self.clock()
        last_wall, last_cpu = self._last_wall, self._last_cpu
        self._last_wall, self._last_cpu = wall, cpu
        if last_wall is None or wall <= last_wall:
            return None
        return 100.0 * (cpu - last_cpu) / (wall - last_wall)


def process_metrics(cpu: CpuMeter) -> dict[str, float]:
    """RSS, CPU percent and CPU seconds of this process; unreadable figures are left out."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, float] = {"process_cpu_seconds_total": usage.ru_utime + usage.ru_stime}
    rss = rss_bytes()
    if rss is not None:
        out["process_resident_memory_bytes"] = float(rss)
    pct = cpu.percent()
    if pct is not None:
        out["process_cpu_percent"] = pct
    return out


def render_prometheus(metrics: Metrics, *, prefix: str = "prognos_edge_") -> str:
    """Render metrics in the Prometheus text exposition format (version 0.0.4).

    Args:
        metrics: Names (with at most one label) to values.
        prefix: Prepended to every metric name.

    Returns:
        The exposition text, one `# TYPE` line per metric family, families in name order.

    Raises:
        ValueError: A name is not a valid metric name (it names the key).
    """
    families: dict[str, list[str]] = {}
    for key in sorted(metrics):
        labeled = _LABELED_RE.match(key)
        if labeled:
            name, label, value = labeled.groups()
            sample = f'{prefix}{name}{{{label}="{value}"}}'
        elif _NAME_RE.match(key):
            name, sample = key, f"{prefix}{key}"
        else:
            raise ValueError(f"metric {key!r} is not a valid Prometheus name (with one label)")
        families.setdefault(name, []).append(f"{sample} {float(metrics[key])!r}")
    lines: list[str] = []
    for name in sorted(families):
        kind = "counter" if name.endswith("_total") else "gauge"
        lines.append(f"# TYPE {prefix}{name} {kind}")
        lines.extend(families[name])
    return "\n".join(lines) + "\n"


def parse_prometheus(text: str) -> dict[str, float]:
    r"""Read Prometheus exposition text back: ``{sample name with its labels: value}``.

    Comments and lines whose value is not a number are skipped (no timestamps are expected).

    Example:
        >>> parse_prometheus('# TYPE x_total counter\nx_total{a="b"} 3.0\n')
        {'x_total{a="b"}': 3.0}
    """
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def health_payload_metrics(metrics: Metrics) -> dict[str, float]:
    """The metrics as contract-v1 health metric names: labels folded into the name.

    `poll_errors_total{device="pump-7"}` becomes `poll_errors_total.pump-7`, which matches the
    contract's name pattern and keeps one InfluxDB field per device.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        labeled = _LABELED_RE.match(key)
        out[f"{labeled.group(1)}.{labeled.group(3)}" if labeled else key] = float(value)
    return out


@dataclass
class MetricsServer:
    """A tiny HTTP server for `/metrics` on the agent's event loop (loopback by default).

    `start()` and `stop()` are called from the loop's thread; `collect` is called for every scrape.
    """

    collect: Callable[[], Metrics]
    host: str = "127.0.0.1"
    port: int = 9108
    _server: asyncio.AbstractServer | None = field(default=None, init=False)

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and wait for open connections to finish."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)).strip():
                pass  # headers are not needed
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""  # noqa: PLR2004
            if path.split(b"?")[0] == b"/metrics":
                status, body = _HTTP_OK, render_prometheus(self.collect()).encode()
            else:
                status, body = _HTTP_NOT_FOUND, b"not found: try /metrics\n"
            reason = "OK" if status == _HTTP_OK else "Not Found"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
