"""The ingester's metrics: counters, gauges and histograms, rendered as Prometheus text (0.0.4).

`edge_agent`'s `render_prometheus` takes a flat mapping with at most one label and has no
histograms, and its `MetricsServer` needs an asyncio loop; the ingester is threaded (paho's network
thread, one writer thread) and needs latency histograms, so it has this small registry and a
stdlib HTTP server on a daemon thread instead.

Rules:

1. Every metric is prefixed `prognos_ingest_`; counters end in `_total`.
2. Label values are escaped; label cardinality is the caller's business (`unknown_asset` is
   capped by the ingester).
3. All methods are thread-safe (one lock): paho's thread, the writer and the scrape all touch it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

PREFIX = "prognos_ingest_"

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Buckets of the write latency histogram, seconds."""
LAG_BUCKETS_S: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0,
)  # fmt: skip
"""Buckets of the lag from read time to stored, seconds."""

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += n
        self.sum += value * n
        self.count += n

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (None when empty)."""
        if self.count == 0:
            return None
        rank, running = q * self.count, 0
        for i, c in enumerate(self.counts):
            running += c
            if running >= rank:
                return self.buckets[i] if i < len(self.buckets) else float("inf")
        return float("inf")


class Metrics:
    """The registry: `inc`, `set`, `observe`, and `render` for a scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = {}
        self._gauges: dict[str, dict[Labels, float]] = {}
        self._hists: dict[str, dict[Labels, _Histogram]] = {}
        self._buckets: dict[str, tuple[float, ...]] = {}
        self._help: dict[str, str] = {}
        self._collectors: list[Callable[[Metrics], None]] = []

    def add_collector(self, collect: Callable[[Metrics], None]) -> None:
        """Call `collect(self)` before each `render` (gauges read at scrape time)."""
        self._collectors.append(collect)

    def describe(self, name: str, help_text: str) -> None:
        """Set the `# HELP` line of a metric."""
        self._help[name] = help_text

    def inc(self, name: str, value: float = 1, labels: Mapping[str, str] | None = None) -> None:
        """Add to a counter (name ends in `_total`)."""
        key = _labels(labels)
        with self._lock:
            family = self._counters.setdefault(name, {})
            family[key] = family.get(key, 0.0) + value

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Set a gauge."""
        with self._lock:
            self._gauges.setdefault(name, {})[_labels(labels)] = value

    def histogram(self, name: str, buckets: Sequence[float]) -> None:
        """Declare a histogram's buckets (seconds)."""
        self._buckets[name] = tuple(buckets)

    def observe(
        self, name: str, value: float, *, n: int = 1, labels: Mapping[str, str] | None = None
    ) -> None:
        """Record `n` observations of `value` in a declared histogram."""
        key = _labels(labels)
        with self._lock:
            family = self._hists.setdefault(name, {})
            hist = family.get(key)
            if hist is None:
                hist = family[key] = _Histogram(self._buckets[name])
            hist.observe(value, n)

    def observe_many(self, name: str, values: Sequence[float] | np.ndarray) -> None:
        """Record many observations (no labels) of a declared histogram, vectorised."""
        array = np.sort(np.asarray(values, dtype=np.float64))
        if array.size == 0:
            return
        with self._lock:
            family = self._hists.setdefault(name, {})
            hist = family.get(())
            if hist is None:
                hist = family[()] = _Histogram(self._buckets[name])
            # Prometheus buckets are "<= bound": count up to the last value equal to it.
            upto = np.searchsorted(array, hist.buckets, side="right").tolist()
            below = 0
            for i, n in enumerate(upto):
                hist.counts[i] += n - below
                below = n
            hist.counts[-1] += int(array.size) - below
            hist.sum += float(array.sum())
            hist.count += int(array.size)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A counter's or gauge's current value (0 when never set); for tests and reports."""
        key = _labels(labels)
        with self._lock:
            if name in self._counters:
                return self._counters[name].get(key, 0.0)
            return self._gauges.get(name, {}).get(key, 0.0)

    def total(self, name: str) -> float:
        """A counter summed over all its labels."""
        with self._lock:
            return sum(self._counters.get(name, {}).values())

    def quantile(self, name: str, q: float) -> float | None:
        """The upper bucket bound of a histogram's q-quantile over all labels (None if empty)."""
        with self._lock:
            hists = list(self._hists.get(name, {}).values())
        if not hists:
            return None
        merged = _Histogram(hists[0].buckets)
        for h in hists:
            merged.counts = [a + b for a, b in zip(merged.counts, h.counts, strict=True)]
            merged.count += h.count
        return merged.quantile(q)

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        for collect in self._collectors:
            collect(self)
        lines: list[str] = []
        with self._lock:
            kinds = (("counter", self._counters), ("gauge", self._gauges))
            for kind, families in kinds:
                for name in sorted(families):
                    self._head(lines, name, kind)
                    for labels, v in sorted(families[name].items()):
                        lines.append(f"{PREFIX}{name}{_render_labels(labels)} {float(v)!r}")
            for name in sorted(self._hists):
                self._head(lines, name, "histogram")
                for labels, hist in sorted(self._hists[name].items()):
                    running = 0
                    for bound, c in zip(hist.buckets, hist.counts, strict=False):
                        running += c
                        le = _render_labels(labels, ("le", repr(bound)))
                        lines.append(f"{PREFIX}{name}_bucket{le} {running}")
                    le = _render_labels(labels, ("le", "+Inf"))
                    lines.append(f"{PREFIX}{name}_bucket{le} {hist.count}")
                    lines.append(f"{PREFIX}{name}_sum{_render_labels(labels)} {hist.sum!r}")
                    lines.append(f"{PREFIX}{name}_count{_render_labels(labels)} {hist.count}")
        return "\n".join(lines) + "\n"

    def _head(self, lines: list[str], name: str, kind: str) -> None:
        if name in self._help:
            lines.append(f"# HELP {PREFIX}{name} {self._help[name]}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")


class MetricsHttpServer:
    """`GET /metrics` on a daemon thread. `start()` returns the bound port (0 picks one)."""

    def __init__(self, render: Callable[[], str], *, host: str, port: int) -> None:
        render_fn = render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "try /metrics")
                    return
                body = render_fn().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
                pass  # scrapes are volume, not events

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> int:
        """Serve on a daemon thread; returns the bound port."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ingest.metrics", daemon=True
        )
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
