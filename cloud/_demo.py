"""`prognos demo`: the foundation flow, real data through the real broker into the real InfluxDB.

Until the Modbus edge agent, the production ingester and the scorer exist, this is the most complete
real flow there is, and it says so: NASA C-MAPSS run-to-failure engines are published as contract-v1
telemetry batches over MQTT 5 (QoS 1, retained status with a Last Will), received on a shared
subscription with manual acknowledgement sent only after InfluxDB accepted the points, and counted
back out of InfluxDB. The run fails (exit 1) unless every reading published is stored.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import prognos_contract as pc
from cloud._cmapss import read_cycles
from cloud.store import InfluxAuth, InfluxClient, Point, quote_ident
from edge_agent import __version__

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cmapss" / "train_FD001.txt"
)
CYCLE_MS = 3_600_000  # one C-MAPSS operating cycle is replayed as one hour of operation
SITE, GATEWAY, MODEL = "demo-plant", "gw-demo-01", "cmapss_turbofan"
SHOW_ENGINES = 10


@dataclass
class Counters:
    """What the flow did, shared between the MQTT threads and the progress printer."""

    published_batches: int = 0
    published_readings: int = 0
    acked_batches: int = 0
    stored_readings: int = 0
    rejected_readings: int = 0
    dead_letters: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `prognos demo`."""
    p = argparse.ArgumentParser(
        prog="prognos demo",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="a C-MAPSS file (default: %(default)s)"
    )
    p.add_argument(
        "--engines", type=int, default=100, help="how many engines to replay (default %(default)s)"
    )
    p.add_argument(
        "--cycles", type=int, default=0, help="at most this many cycles per engine (0 = all)"
    )
    p.add_argument(
        "--batch", type=int, default=100, help="readings per MQTT message (default %(default)s)"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0,
        help="stop publishing after this many seconds (0 = no limit)",
    )
    p.add_argument(
        "--prefix", default=pc.DEFAULT_PREFIX, help="MQTT topic prefix (default %(default)s)"
    )
    p.add_argument("--database", default="prognos", help="InfluxDB database (default %(default)s)")
    return p


def _say(line: str) -> None:
    print(f"demo: {line}", flush=True)  # noqa: T201 - the demo's output is for its user


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        msg = f"{name} is not set: run through scripts/demo or scripts/services.py run"
        raise SystemExit(msg)
    return value


def _load(args: argparse.Namespace) -> list[pc.Reading]:
    """C-MAPSS rows as contract readings, interleaved by cycle like a live fleet, ending now."""
    if not args.data.exists():
        raise SystemExit(f"{args.data}: no such file (give a C-MAPSS file with --data)")
    rows = [
        c
        for c in read_cycles(args.data)
        if c.unit <= args.engines and (args.cycles <= 0 or c.cycle <= args.cycles)
    ]
    last = max(c.cycle for c in rows)
    base_ms = (int(time.time() * 1000) // CYCLE_MS - last) * CYCLE_MS
    rows.sort(key=lambda c: (c.cycle, c.unit))
    return [
        pc.Reading(
            asset=f"engine-{c.unit:03d}",
            ts=base_ms + c.cycle * CYCLE_MS,
            values={"cycle": c.cycle, **c.values},
        )
        for c in rows
    ]


def run(args: argparse.Namespace) -> int:
    """Run the flow; 0 when every published reading was stored."""
    host, port = _env("PROGNOS_MQTT_HOST"), int(_env("PROGNOS_MQTT_PORT"))
    influx_url = _env("PROGNOS_INFLUX_URL")
    influx = InfluxClient(
        url=influx_url,
        database=args.database,
        auth=InfluxAuth.basic(_env("PROGNOS_INFLUX_USER"), _env("PROGNOS_INFLUX_PASSWORD")),
    )
    influx.create_database(args.database)
    readings = _load(args)
    _say(
        f"{len(readings)} readings of {len({r.asset for r in readings})} C-MAPSS engines from "
        f"{args.data.name}, in batches of {args.batch}, via mqtt://{host}:{port} into "
        f"{influx_url} db={args.database!r}"
    )
    counters = Counters()
    consumer = _start_consumer(host, port, args, influx, counters)
    publisher = _start_publisher(host, port, args)
    start = time.monotonic()
    stop_printing = threading.Event()
    printer = threading.Thread(target=_progress, args=(counters, start, stop_printing), daemon=True)
    printer.start()
    infos: list[mqtt.MQTTMessageInfo] = []
    topic = pc.build_topic("telemetry", site=SITE, gateway=GATEWAY, prefix=args.prefix)
    for seq, i in enumerate(range(0, len(readings), args.batch)):
        if args.duration and time.monotonic() - start > args.duration:
            _say(f"--duration {args.duration}s reached, stopping the publisher")
            break
        chunk = readings[i : i + args.batch]
        payload = pc.encode_telemetry(
            pc.TelemetryBatch(gateway=GATEWAY, seq=seq, readings=tuple(chunk))
        )
        infos.append(publisher.publish(topic, payload, qos=1))
        with counters.lock:
            counters.published_batches += 1
            counters.published_readings += len(chunk)
    for info in infos:
        info.wait_for_publish(timeout=60)
    # Every batch is PUBACKed by the broker; now wait until the consumer has stored and acked them.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with counters.lock:
            if counters.acked_batches + len(counters.dead_letters) >= counters.published_batches:
                break
        time.sleep(0.1)
    stop_printing.set()
    printer.join()
    elapsed = time.monotonic() - start
    _stop(publisher, args.prefix)
    consumer.disconnect()
    consumer.loop_stop()
    return _report(influx, args, counters, elapsed)


def _start_publisher(host: str, port: int, args: argparse.Namespace) -> mqtt.Client:
    status = pc.build_topic("status", site=SITE, gateway=GATEWAY, prefix=args.prefix)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"prognos-demo-{GATEWAY}", protocol=mqtt.MQTTv5
    )
    offline = pc.encode_status(
        pc.Status(state="offline", ts=int(time.time() * 1000), agent_version=__version__)
    )
    client.will_set(status, offline, qos=1, retain=True)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    online = pc.encode_status(
        pc.Status(state="online", ts=int(time.time() * 1000), agent_version=__version__)
    )
    client.publish(status, online, qos=1, retain=True).wait_for_publish(timeout=10)
    return client


def _stop(client: mqtt.Client, prefix: str) -> None:
    status = pc.build_topic("status", site=SITE, gateway=GATEWAY, prefix=prefix)
    offline = pc.encode_status(
        pc.Status(state="offline", ts=int(time.time() * 1000), agent_version=__version__)
    )
    client.publish(status, offline, qos=1, retain=True).wait_for_publish(timeout=10)
    client.disconnect()
    client.loop_stop()


def _start_consumer(
    host: str, port: int, args: argparse.Namespace, influx: InfluxClient, counters: Counters
) -> mqtt.Client:
    """Subscribe on a shared subscription; ack each message only after InfluxDB stored it."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="prognos-demo-ingest",
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        topic = pc.parse_topic(msg.topic, prefix=args.prefix)
        try:
            decoded = pc.decode_telemetry(bytes(msg.payload), now_ms=int(time.time() * 1000))
        except pc.ContractError as exc:
            with counters.lock:
                counters.dead_letters.append(f"{msg.topic}: {exc}")
            c.ack(msg.mid, msg.qos)
            return
        points = [
            Point(
                measurement="telemetry",
                tags={
                    "site": topic.site,
                    "gateway": topic.gateway,
                    "asset": r.asset,
                    "model": MODEL,
                },
                fields=dict(r.values),
                ts=r.ts,
            )
            for r in decoded.batch.readings
        ]
        influx.write(points, precision="ms")  # an exception here leaves the message un-acked
        c.ack(msg.mid, msg.qos)
        with counters.lock:
            counters.acked_batches += 1
            counters.stored_readings += len(points)
            counters.rejected_readings += len(decoded.rejected)

    def on_subscribe(*_args: object) -> None:
        subscribed.set()

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = 5000  # DESIGN.md: let ack-after-write keep many messages in flight
    client.connect(host, port, properties=props)
    client.loop_start()
    client.subscribe(pc.shared_subscription("prognos-demo", prefix=args.prefix), qos=1)
    if not subscribed.wait(10):
        raise SystemExit("demo: the broker did not confirm the subscription in 10 s")
    return client


def _progress(counters: Counters, start: float, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        with counters.lock:
            pub, stored = counters.published_readings, counters.stored_readings
        dt = time.monotonic() - start
        _say(f"t={dt:5.1f}s published {pub} readings ({pub / dt:,.0f}/s), stored {stored}")


def _report(
    influx: InfluxClient, args: argparse.Namespace, counters: Counters, elapsed: float
) -> int:
    result = influx.query(
        f"SELECT count({quote_ident('nf_rpm')}) FROM telemetry GROUP BY asset",  # noqa: S608 - quoted
        database=args.database,
    )
    per_asset = {str(row["asset"]): int(str(row["count"])) for row in result.rows()}
    in_db = sum(per_asset.values())
    shown = ", ".join(f"{a}={n}" for a, n in sorted(per_asset.items())[:SHOW_ENGINES])
    more = " ..." if len(per_asset) > SHOW_ENGINES else ""
    _say(f"{len(per_asset)} engines in InfluxDB, cycles stored per engine: {shown}{more}")
    ok = in_db == counters.published_readings and not counters.dead_letters
    _say(
        f"published {counters.published_readings} readings in {counters.published_batches} "
        f"batches; stored {in_db} points in InfluxDB; rejected {counters.rejected_readings}; "
        f"dead-lettered {len(counters.dead_letters)}; {elapsed:.1f}s "
        f"({counters.published_readings / max(elapsed, 1e-9):,.0f} readings/s end to end)"
    )
    _say("OK, nothing lost" if ok else "FAILED, readings missing")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of `prognos demo`."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
