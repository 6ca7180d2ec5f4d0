"""Agent health figures and their Prometheus exposition."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent._health import (
    CpuMeter,
    MetricsServer,
    health_payload_metrics,
    process_metrics,
    render_prometheus,
    rss_bytes,
)
from prognos_contract import Health


def test_prometheus_text_has_one_type_line_per_family_and_labels_rendered() -> None:
    """Counters end in _total and are typed counter; labelled samples share their family."""
    text = render_prometheus(
        {
            "outbox_depth_messages": 3,
            'poll_errors_total{device="pump-7"}': 2,
            'poll_errors_total{device="pump-8"}': 0,
            "published_total": 10,
        }
    )
    assert text.splitlines() == [
        "# TYPE prognos_edge_outbox_depth_messages gauge",
        "prognos_edge_outbox_depth_messages 3.0",
        "# TYPE prognos_edge_poll_errors_total counter",
        'prognos_edge_poll_errors_total{device="pump-7"} 2.0',
        'prognos_edge_poll_errors_total{device="pump-8"} 0.0',
        "# TYPE prognos_edge_published_total counter",
        "prognos_edge_published_total 10.0",
    ]


@pytest.mark.parametrize("bad", ["1abc", "a b", 'x{device="a\nb"}', 'x{a="1",b="2"}'])
def test_an_invalid_metric_name_is_an_error_naming_it(bad: str) -> None:
    """A name Prometheus cannot parse is refused with the name in the message."""
    with pytest.raises(ValueError, match="is not a valid Prometheus name"):
        render_prometheus({bad: 1})


def test_health_payload_folds_labels_into_contract_names() -> None:
    """Labelled metrics become dotted names that the contract's Health payload accepts."""
    metrics = health_payload_metrics({'poll_errors_total{device="pump-7"}': 2, "rss": 1.5})
    assert metrics == {"poll_errors_total.pump-7": 2.0, "rss": 1.5}
    assert Health(ts=1_763_805_599_000, metrics=metrics).metrics == metrics


def test_process_figures_are_read_from_the_running_process() -> None:
    """RSS is positive and CPU percent appears from the second reading on."""
    now = [0.0]
    cpu = CpuMeter(clock=lambda: now[0])
    first = process_metrics(cpu)
    assert "process_cpu_percent" not in first
    assert (rss_bytes() or 0) > 1_000_000
    now[0] = 10.0
    second = process_metrics(cpu)
    assert 0.0 <= second["process_cpu_percent"] <= 200.0
    assert second["process_cpu_seconds_total"] >= first["process_cpu_seconds_total"]


def test_metrics_server_serves_the_exposition_and_404_elsewhere() -> None:
    """`/metrics` answers 200 with the current figures; any other path answers 404."""

    async def scrape(port: int, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        return data

    async def main() -> tuple[bytes, bytes]:
        calls = iter(range(1, 100))
        server = MetricsServer(collect=lambda: {"scrapes_total": next(calls)}, port=0)
        port = await server.start()
        try:
            return await scrape(port, "/metrics"), await scrape(port, "/nope")
        finally:
            await server.stop()

    ok, missing = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.1 200 OK")
    assert ok.endswith(b"prognos_edge_scrapes_total 1.0\n")
    assert missing.startswith(b"HTTP/1.1 404")
