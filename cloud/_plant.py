"""`prognos plant`: the main job, the whole pipeline on the simulated plant.

    prognos plant --duration 400                     # run, show the flow, stop, print the report
    prognos plant report RUN_DIR [--json]            # the replay report of a finished run

Needs the services' environment (`PROGNOS_MQTT_HOST`/`PORT`, `PROGNOS_INFLUX_URL`/`USER`/
`PASSWORD`, as `scripts/services.py` writes it). In order, it makes sure champion models exist
(trained without the engines the simulator replays, cached by data fingerprint), creates the
database, and starts as subprocesses, logs in the run folder: the simulator, one edge agent per
gateway, the ingester, the work-order delivery worker (to a fake service system's webhook, in
this process), the scorer, and the web page with the REST API (`prognos serve`; the login
token is in the run folder). A status line every two seconds shows the flow. On `--duration`
expiry, SIGINT or SIGTERM it stops in order (plant; agents once their outboxes are empty;
ingester once everything is acknowledged; one more scoring pass; deliveries), counts what
InfluxDB holds, and prints the replay report (`cloud._replay_report`). docs/main-job.md explains
everything; exit 0 when nothing was lost, 1 when readings were lost or a process died,
2 for a usage error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

import structlog
import yaml

from cloud._plant_setup import (
    DATASETS,
    ROOT,
    PlantError,
    ensure_models,
    parse_units,
    patch_edge_config,
    scoring_config,
)
from cloud._replay_report import build_report, format_report, load_inputs
from edge_agent._health import parse_prometheus

log = structlog.get_logger("prognos.plant")

DEFAULT_FLEET = ROOT / "config" / "plant.yaml"
DEFAULT_POLICY = ROOT / "config" / "plant-policy.yaml"
DEFAULT_HOLDOUT = "91-100"
WEB_COMMAND = ("cloud", "serve")
"""What serves the planners: `prognos serve` (issue 9: the web page and the REST API on one port).
The one place to switch back to the API alone: ``("cloud", "api", "serve")`` (same options)."""
STATUS_EVERY_S = 2.0
EXIT_OK, EXIT_LOST, EXIT_USAGE = 0, 1, 2


# ------------------------------------------------------------------------------------ processes


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Child:
    """A subprocess of the main job, its log in the run folder."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def alive(self) -> bool:
        """True while it runs."""
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait, SIGKILL if it does not stop; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("child_killed", child=self.name, after_s=timeout_s)
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        code = int(self.proc.returncode)
        log.info("child_stopped", child=self.name, exit_code=code)
        return code


def spawn(name: str, argv: Sequence[str], logs: Path, env: dict[str, str]) -> Child:
    """Start `argv` in its own session (Ctrl-C reaches only us: we stop children in order)."""
    log_path = logs / f"{name}.log"
    out = log_path.open("ab")
    proc = subprocess.Popen(
        list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    log.info("child_started", child=name, pid=proc.pid, log=str(log_path))
    return Child(name, proc, log_path, out)


def _say(*parts: object, end: str = "\n", file: IO[str] | None = None, flush: bool = True) -> None:
    """Write a line for the operator (stdout unless `file`)."""
    out = file or sys.stdout
    out.write(" ".join(str(p) for p in parts) + end)
    if flush:
        out.flush()


def _py(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


# ------------------------------------------------------------------------------------ probes


def scrape(url: str) -> dict[str, float]:
    """Prometheus text as ``{name{labels}: value}`` (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our loopback URL
            text = resp.read().decode()
    except OSError:
        return {}
    return parse_prometheus(text)


def agent_totals(urls: Sequence[str]) -> dict[str, int] | None:
    """Summed over the running agents' `/metrics`: read, published, dropped, still queued.

    None when an agent does not answer (the outbox file is locked while its agent runs).
    """
    out = {"enqueued": 0, "published": 0, "dropped": 0, "queued": 0}
    names = {
        "enqueued": "prognos_edge_outbox_enqueued_readings_total",
        "published": "prognos_edge_outbox_published_readings_total",
        "dropped": "prognos_edge_outbox_dropped_readings_total",
        "queued": "prognos_edge_outbox_depth_readings",
    }
    for url in urls:
        metrics = scrape(url)
        if not metrics:
            return None
        for key, name in names.items():
            out[key] += int(metrics.get(name, 0))
    return out


def outbox_totals(sim_dir: Path) -> dict[str, int]:
    """Summed over the (stopped) agents' outbox files: read, published, dropped, still queued."""
    out = {"enqueued": 0, "published": 0, "dropped": 0, "queued_messages": 0, "queued": 0}
    for path in sim_dir.glob("edge-state/*/outbox.db"):
        try:
            db = sqlite3.connect(path, timeout=5)
            try:
                meta = db.execute(
                    "SELECT enqueued_readings, published_readings, dropped_readings FROM meta"
                ).fetchone()
                queued = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(readings), 0) FROM messages"
                ).fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            continue
        if meta:
            out["enqueued"] += int(meta[0])
            out["published"] += int(meta[1])
            out["dropped"] += int(meta[2])
        out["queued_messages"] += int(queued[0])
        out["queued"] += int(queued[1])
    return out


def decision_counts(db_path: Path) -> dict[str, int]:
    """Alerts open, work orders opened and delivered, outbox rows still pending."""
    out = {"alerts_open": 0, "work_orders": 0, "delivered": 0, "outbox_pending": 0}
    if not db_path.exists():
        return out
    try:
        db = sqlite3.connect(db_path, timeout=5)
        try:
            out["alerts_open"] = db.execute(
                "SELECT COUNT(*) FROM alerts WHERE state IN ('open', 'acknowledged', 'snoozed')"
            ).fetchone()[0]
            wo = db.execute("SELECT COUNT(*), COUNT(external_id) FROM work_orders").fetchone()
            out["work_orders"], out["delivered"] = int(wo[0]), int(wo[1])
            out["outbox_pending"] = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"
            ).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        pass
    return out


def count_failures(sim_dir: Path) -> int:
    """Failures in the ground truth so far."""
    path = sim_dir / "ground_truth.jsonl"
    if not path.exists():
        return 0
    return sum('"failure"' in line for line in path.read_text().splitlines())


class Influx:
    """The few queries the main job makes (counts, newest scored reading per asset)."""

    def __init__(self, database: str) -> None:
        from cloud.store import InfluxAuth, InfluxClient  # noqa: PLC0415 - httpx only here

        user = os.environ.get("PROGNOS_INFLUX_USER", "")
        auth = (
            InfluxAuth.basic(user, os.environ.get("PROGNOS_INFLUX_PASSWORD", "")) if user else None
        )
        self.client = InfluxClient(
            url=os.environ["PROGNOS_INFLUX_URL"], database=database, auth=auth, timeout_s=30
        )

    def _rows(self, q: str) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
        result = self.client.query(q)
        for series in result.series:
            for row in series.rows():
                yield dict(series.tags or {}), row

    def scores_count(self, since_ms: int) -> int:
        """Score points written since the run started."""
        q = f"SELECT COUNT(health) FROM scores WHERE time >= {since_ms}ms"  # noqa: S608 - our own measurement and a number
        return sum(int(row.get("count") or 0) for _t, row in self._rows(q))

    def newest_scored(self, since_ms: int) -> dict[str, int]:
        """Asset -> time (ms) of the newest reading a score was computed from."""
        q = f"SELECT LAST(health) FROM scores WHERE time >= {since_ms}ms GROUP BY asset"  # noqa: S608 - our own measurement and a number
        return {tags["asset"]: int(row["time"]) for tags, row in self._rows(q)}

    def stored_counts(self, since_ms: int) -> dict[str, dict[str, int]]:
        """Asset -> signal -> points stored in `telemetry` since `since_ms`."""
        q = f"SELECT COUNT(*) FROM telemetry WHERE time >= {since_ms}ms GROUP BY asset"  # noqa: S608 - our own measurement and a number
        out: dict[str, dict[str, int]] = {}
        for tags, row in self._rows(q):
            counts = out.setdefault(tags["asset"], {})
            for name, value in row.items():
                if name.startswith("count_") and value:
                    counts[name[len("count_") :]] = int(value)
        return out


# ------------------------------------------------------------------------------------ status


@dataclasses.dataclass
class Status:
    """One status sample: the flow since the start."""

    t_s: float
    read: int
    stored: int
    scores: int
    alerts_open: int
    work_orders: int
    delivered: int
    failures: int
    queued: int


def format_status(now: Status, before: Status | None, duration_s: float | None) -> str:
    """One line: rates since the previous sample, totals, progress against --duration.

    Readings here are device readings (one per device poll, all its signals), as the agents'
    outboxes and the ingester count them.
    """
    prev = before or now
    span = now.t_s - prev.t_s

    def rate(a: int, b: int) -> str:
        return f"{(a - b) / span:5.0f}/s" if span > 0 else "    -/s"

    if duration_s:
        bar = "#" * int(min(1.0, now.t_s / duration_s) * 20)
        prog = f"[{bar:<20}] {now.t_s:4.0f}/{duration_s:.0f}s"
    else:
        prog = f"{now.t_s:5.0f}s"
    return (
        f"{prog} | read {now.read:>7} {rate(now.read, prev.read)} | stored {now.stored:>7} "
        f"{rate(now.stored, prev.stored)} | outbox {now.queued:>4} | scores {now.scores:>5} | "
        f"alerts open {now.alerts_open:>2} | work orders {now.work_orders:>2} "
        f"({now.delivered} delivered) | failures {now.failures}"
    )


# ------------------------------------------------------------------------------------ the run


@dataclasses.dataclass
class RunOptions:
    """What `prognos plant` was asked to do."""

    run_dir: Path
    duration_s: float | None
    speed: float | None
    fleet: Path
    holdout: list[int]
    cache: Path
    database: str
    prefix: str
    policy: Path
    drain_timeout_s: float
    score_every_cycles: float
    api_port: int
    window_h: float


class _StopFlag:
    def __init__(self) -> None:
        self.stop = False
        self.signal: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.stop = True
        self.signal = signal.Signals(signum).name


def _wait_until(what: str, check: Any, timeout_s: float, every_s: float = 0.5) -> bool:  # noqa: ANN401 - a callable
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    log.warning("wait_timed_out", what=what, timeout_s=timeout_s)
    return False


class MainJob:
    """One run of the main job (see the module docstring for the order of things)."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.run_dir = opts.run_dir
        self.sim_dir = opts.run_dir / "sim"
        self.logs = opts.run_dir / "logs"
        self.children: dict[str, Child] = {}
        self.agents: list[Child] = []
        self.agent_urls: list[str] = []
        self.died: list[str] = []
        self.last_box = {"enqueued": 0, "published": 0, "dropped": 0, "queued": 0}
        self.tag = secrets.token_hex(3)
        self.influx = Influx(opts.database)
        self.env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.latency_scored: list[float] = []
        self.newest_scored: dict[str, int] = {}
        self.started_ms = 0
        self.poll_interval_s = 0.5
        self.ingest_metrics = ""
        self.fake: Any = None
        self.inbound: Any = None
        self.technician: Any = None
        self.api_url = ""
        self.login_token_path = opts.run_dir / "login-token.txt"

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        """Models, database, then every process; returns once the plant is up."""
        from cloud.sim import load_fleet  # noqa: PLC0415 - pymodbus, pydantic: only for a run

        opts = self.opts
        self.logs.mkdir(parents=True, exist_ok=True)
        fleet = load_fleet(opts.fleet)
        speed = opts.speed or fleet.speed
        cycle_s = fleet.engines.cycle_s if fleet.engines else 3600.0
        self.speed, self.cycle_s = speed, cycle_s
        self.poll_interval_s = float(fleet.poll_interval_s)
        if fleet.engines:
            unseen = sorted(set(fleet.engines.units) - set(opts.holdout))
            if unseen:
                msg = (
                    f"{opts.fleet}: engines.units {unseen} are not held out of training "
                    f"(--holdout {opts.holdout[0]}-{opts.holdout[-1]}): the report would score "
                    "engines the models saw"
                )
                raise PlantError(msg)
            cmapss = Path(fleet.engines.file)
        else:
            cmapss = DATASETS / "cmapss" / "train_FD001.txt"
        registry = ensure_models(opts.cache, cmapss, opts.holdout, self.logs)
        score_yaml = self.run_dir / "scoring.yaml"
        hpu_cycle_s = fleet.hydraulics.cycle_s if fleet.hydraulics else 3600.0
        plans = scoring_config(speed, cycle_s, hpu_cycle_s)
        score_yaml.write_text(yaml.safe_dump(plans, sort_keys=False))
        self._run_once(
            "db-init", _py("cloud", "db", "--database", opts.database, "init"), timeout_s=60
        )
        self._start_service_system()
        self.started_ms = int(time.time() * 1000)
        mqtt_host = os.environ["PROGNOS_MQTT_HOST"]
        mqtt_port = os.environ["PROGNOS_MQTT_PORT"]
        sim = [
            *_py("cloud", "sim", "plant", "--fleet", str(opts.fleet), "--out", str(self.sim_dir)),
            *("--speed", str(speed), "--mqtt-host", mqtt_host, "--mqtt-port", mqtt_port),
        ]
        self.children["sim"] = spawn("sim", sim, self.logs, self.env)
        _wait_until(
            "the simulator's outputs",
            lambda: (self.sim_dir / "manifest.json").exists() or not self.children["sim"].alive(),
            60,
        )
        if not self.children["sim"].alive():
            msg = f"the simulator stopped at start: see {self.children['sim'].log_path}"
            raise PlantError(msg)
        assets = self.sim_dir / "assets.yaml"
        for config in sorted(self.sim_dir.glob("edge-*.yaml")):
            port = free_port()
            self.agent_urls.append(f"http://127.0.0.1:{port}/metrics")
            gateway = patch_edge_config(config, prefix=opts.prefix, tag=self.tag, metrics_port=port)
            child = spawn(
                f"edge-{gateway}", _py("edge_agent", "run", str(config)), self.logs, self.env
            )
            self.agents.append(child)
        self.ingest_port = free_port()
        self.children["ingest"] = spawn(
            "ingest",
            _py(
                "cloud",
                "ingest",
                *("--client-id", f"plant-ingest-{self.tag}", "--share-group", f"plant{self.tag}"),
                *("--prefix", opts.prefix, "--database", opts.database),
                *("--state-dir", str(self.run_dir / "ingest"), "--registry", str(assets)),
                *("--metrics-listen", f"127.0.0.1:{self.ingest_port}", "--log-format", "json"),
            ),
            self.logs,
            self.env,
        )
        db = self.run_dir / "decisions.db"
        interval = max(1.0, opts.score_every_cycles * cycle_s / speed)
        self.children["score"] = spawn(
            "score",
            _py(
                "cloud",
                "score",
                *("--registry", str(assets), "--models", str(registry), "--state", str(db)),
                *("--config", str(score_yaml), "--policy", str(opts.policy)),
                *("--database", opts.database, "--interval", f"{interval:g}s"),
                *("--metrics-file", str(self.run_dir / "scorer.prom"), "--log-format", "json"),
            ),
            self.logs,
            self.env,
        )
        self.children["deliver"] = spawn(
            "deliver",
            _py(
                "cloud",
                "workorders",
                *("--db", str(db), "--log-format", "json", "deliver", "--adapter", "webhook"),
                *("--url", str(self.fake.webhook_url), "--policy", str(opts.policy)),
                *("--poll-s", "0.5"),
            ),
            self.logs,
            self.env,
        )
        self._start_api(db, assets)

    def _run_once(self, name: str, argv: Sequence[str], timeout_s: float) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            code = subprocess.call(
                list(argv), stdout=out, stderr=subprocess.STDOUT, env=self.env, timeout=timeout_s
            )
        if code != 0:
            msg = f"{name} failed (exit {code}): see {self.logs / f'{name}.log'}"
            raise PlantError(msg)

    def _start_service_system(self) -> None:
        """The fake service system, Prognos's inbound endpoint for its callbacks, technicians."""
        from cloud._technician import Technician  # noqa: PLC0415 - only for a run
        from cloud.workorders import FakeServiceSystem, InboundServer  # noqa: PLC0415

        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.env["PROGNOS_WEBHOOK_SECRET"] = secret
        db = self.run_dir / "decisions.db"
        self.inbound = InboundServer(db=db, secrets=[secret])
        self.inbound.start()
        self.fake = FakeServiceSystem(secret=secret, callback_url=self.inbound.url)
        self.fake.start()
        self.technician = Technician(self.sim_dir / "ground_truth.jsonl", db, self.fake)
        log.info("service_system_started", url=self.fake.webhook_url, callbacks=self.inbound.url)

    def _stop_service_system(self) -> None:
        for server in (self.fake, self.inbound):
            if server is not None:
                server.stop()

    def _start_api(self, db: Path, assets: Path) -> None:
        """The planners' web page and the REST API on one port (`WEB_COMMAND`), and a login.

        The planner token is shown once by `prognos api token add`: it is kept in
        `login-token.txt` of the run folder (owner-only), to paste into the login page.
        """
        tokens = self.run_dir / "api-tokens.json"
        self.login_token_path = self.run_dir / "login-token.txt"
        add = [
            *_py("cloud", "api", "token", "add", "--tokens", str(tokens), "--name", "plant"),
            *("--role", "planner"),
        ]
        log_path = self.logs / "api-token.log"
        with log_path.open("wb") as err:
            done = subprocess.run(
                add, stdout=subprocess.PIPE, stderr=err, env=self.env, timeout=60, check=False
            )
        if done.returncode != 0:
            msg = f"api-token failed (exit {done.returncode}): see {log_path}"
            raise PlantError(msg)
        self.login_token_path.touch(mode=0o600)
        self.login_token_path.write_bytes(done.stdout)
        port = self.opts.api_port or free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.children["api"] = spawn(
            "api",
            _py(
                *WEB_COMMAND,
                *("--db", str(db), "--assets", str(assets), "--tokens", str(tokens)),
                *("--influx-db", self.opts.database, "--port", str(port)),
            ),
            self.logs,
            self.env,
        )

    # ---------------------------------------------------------------- monitor

    def sample(self, t0: float) -> Status:
        """The flow now (each probe failing quietly to 0: the line must keep coming)."""
        box = agent_totals(self.agent_urls) or self.last_box
        self.last_box = box
        metrics = scrape(f"http://127.0.0.1:{self.ingest_port}/metrics")
        decisions = decision_counts(self.run_dir / "decisions.db")
        scores = 0
        with contextlib.suppress(Exception):
            scores = self.influx.scores_count(self.started_ms)
            now_ms = time.time() * 1000
            for asset, ts in self.influx.newest_scored(self.started_ms).items():
                if ts != self.newest_scored.get(asset):
                    self.newest_scored[asset] = ts
                    self.latency_scored.append(max(0.0, (now_ms - ts) / 1000))
        return Status(
            t_s=time.monotonic() - t0,
            read=box["enqueued"],
            stored=int(metrics.get("prognos_ingest_points_written_total", 0)),
            scores=scores,
            alerts_open=decisions["alerts_open"],
            work_orders=decisions["work_orders"],
            delivered=decisions["delivered"],
            failures=count_failures(self.sim_dir),
            queued=box["queued"],
        )

    def monitor(self, flag: _StopFlag) -> None:
        """Print the status line until --duration, a signal, or a child dies."""
        t0 = time.monotonic()
        before: Status | None = None
        tty = sys.stdout.isatty()
        while not flag.stop:
            now = self.sample(t0)
            self._complete_work()
            line = format_status(now, before, self.opts.duration_s)
            _say(("\r" + line[:200]) if tty else line, end="" if tty else "\n", flush=True)
            before = now
            dead = [c.name for c in [*self.children.values(), *self.agents] if not c.alive()]
            if dead:
                log.error("child_died", children=dead, logs=str(self.logs))
                self.died = dead
                break
            if self.opts.duration_s is not None and now.t_s >= self.opts.duration_s:
                break
            time.sleep(STATUS_EVERY_S)
        if tty:
            _say()

    def _complete_work(self) -> None:
        """Work orders the simulator's consumable replacements complete (`cloud._technician`)."""
        if self.technician is None:
            return
        import httpx  # noqa: PLC0415 - the fake service system's client, only for a run

        try:
            self.technician.step()
        except (OSError, ValueError, sqlite3.Error, httpx.HTTPError) as exc:
            log.warning("technician_failed", error=repr(exc))

    # ---------------------------------------------------------------- stop

    def _drain_agents(self, timeout_s: float) -> None:
        """Wait until the agents have published what they read (the plant is stopped).

        The agents now read only errors. A poll that read good values just before the stop may
        still be on its way into an outbox: every agent finishes its polls first, then the
        outboxes must be seen empty twice, a poll interval apart.
        """
        time.sleep(max(2.0, 4 * self.poll_interval_s))
        empty_before = [False]

        def drained() -> bool:
            empty = (agent_totals(self.agent_urls) or {"queued": 1})["queued"] == 0
            done = empty and empty_before[0]
            empty_before[0] = empty
            return done

        _wait_until(
            "the agents' outboxes to drain",
            drained,
            timeout_s,
            every_s=max(0.5, self.poll_interval_s),
        )

    def stop(self) -> dict[str, Any]:
        """Stop in order, count, and write plant.json and stored.json; returns plant.json."""
        drain = self.opts.drain_timeout_s
        stopped_ms = int(time.time() * 1000)
        if "sim" in self.children:
            self.children.pop("sim").stop()
        self._drain_agents(drain)
        for agent in self.agents:
            agent.stop()
        left = outbox_totals(self.sim_dir)
        metrics_url = f"http://127.0.0.1:{getattr(self, 'ingest_port', 0)}/metrics"
        if "ingest" in self.children:
            last: list[float] = [-1.0]

            def settled() -> bool:
                m = scrape(metrics_url)
                written = m.get("prognos_ingest_points_written_total", -2.0)
                done = m.get("prognos_ingest_inflight_unacked", 1.0) == 0 and written == last[0]
                last[0] = written
                return done

            _wait_until("the ingester to flush", settled, drain, every_s=1.0)
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(metrics_url, timeout=2) as resp,
            ):
                self.ingest_metrics = resp.read().decode()
            self.children.pop("ingest").stop()
        if "score" in self.children:
            prom = self.run_dir / "scorer.prom"
            mark = prom.stat().st_mtime if prom.exists() else 0.0
            # One full pass that started after everything was stored: two rewrites.
            for _ in range(2):
                _wait_until(
                    "a scoring pass",
                    lambda m=mark: prom.exists() and prom.stat().st_mtime > m,
                    drain,
                )
                mark = prom.stat().st_mtime if prom.exists() else 0.0
            with contextlib.suppress(Exception):
                self.sample(time.monotonic())  # the final scores' latency samples
            self.children.pop("score").stop()
        if "deliver" in self.children:
            _wait_until(
                "deliveries",
                lambda: decision_counts(self.run_dir / "decisions.db")["outbox_pending"] == 0,
                drain,
            )
            self.children.pop("deliver").stop()
        for child in list(self.children.values()):
            child.stop()
        self.children.clear()
        self._stop_service_system()
        stored = self.influx.stored_counts(self.started_ms)
        (self.run_dir / "stored.json").write_text(json.dumps(stored, indent=1, sort_keys=True))
        (self.run_dir / "ingest-metrics.prom").write_text(self.ingest_metrics)
        p50, p95, mean = lag_quantiles(self.ingest_metrics)
        run = {
            "started_ms": self.started_ms,
            "stopped_ms": stopped_ms,
            "speed": self.speed,
            "cycle_s": self.cycle_s,
            "database": self.opts.database,
            "prefix": self.opts.prefix,
            "outbox_left_readings": left["queued"],
            "agents": {k: left[k] for k in ("enqueued", "published", "dropped")},
            "service_system_records": len(self.fake.webhook_records) if self.fake else 0,
            "work_orders_completed": self.technician.completed if self.technician else 0,
            "children_died": self.died,
            "latency": {
                "read_to_stored_p50_s": p50,
                "read_to_stored_p95_s": p95,
                "read_to_stored_mean_s": mean,
                "read_to_scored_s": self.latency_scored,
                "method": (
                    "read->stored: the ingester's lag histogram (bucket upper bounds); "
                    f"read->scored: newest scored reading's age, sampled every {STATUS_EVERY_S:g} s"
                ),
            },
        }
        (self.run_dir / "plant.json").write_text(json.dumps(run, indent=1))
        return run

    def abort(self) -> None:
        """Stop whatever runs, in reverse order, without waiting for drains."""
        for child in [*reversed(list(self.children.values())), *self.agents]:
            if child.alive() or not child.log_file.closed:
                child.stop(timeout_s=10)
        self._stop_service_system()


def lag_quantiles(prom: str) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and mean of the ingester's read->stored lag histogram.

    Quantiles are interpolated linearly within their bucket (as Prometheus'
    ``histogram_quantile``); the mean is exact (sum / count).
    """
    buckets: list[tuple[float, float]] = []
    total_s = count = 0.0
    for line in prom.splitlines():
        if m := re.match(r'prognos_ingest_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', line):
            buckets.append((float(m[1]), float(m[2])))
        elif line.startswith("prognos_ingest_lag_seconds_sum "):
            total_s = float(line.split()[1])
        elif line.startswith("prognos_ingest_lag_seconds_count "):
            count = float(line.split()[1])
    if not buckets or buckets[-1][1] <= 0:
        return None, None, None
    total = buckets[-1][1]

    def q(share: float) -> float | None:
        lo_bound, lo_n = 0.0, 0.0
        for le, n in buckets:
            if n >= share * total:
                if le == float("inf"):
                    return None
                return lo_bound + (le - lo_bound) * (share * total - lo_n) / max(n - lo_n, 1e-12)
            lo_bound, lo_n = le, n
        return None

    return q(0.5), q(0.95), (total_s / count if count else None)


# ------------------------------------------------------------------------------------ CLI


def run_parser() -> argparse.ArgumentParser:
    """Arguments of `prognos plant`."""
    p = argparse.ArgumentParser(
        prog="prognos plant",
        description=(__doc__ or "").split("\n\n")[2].replace("\n", " "),
        epilog="'prognos plant report RUN_DIR' prints the replay report of a finished run. "
        "docs/main-job.md explains the figures.",
    )
    p.add_argument(
        "--run-dir", type=Path, help="the run folder (default: var/plant/run-<UTC time>)"
    )
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.add_argument("--speed", type=float, help="simulated s per wall s (default: the fleet's)")
    p.add_argument(
        "--fleet", type=Path, default=DEFAULT_FLEET, help="fleet config (default %(default)s)"
    )
    p.add_argument(
        "--holdout",
        default=DEFAULT_HOLDOUT,
        help="C-MAPSS units kept out of training; the fleet's engines must be among them "
        "(default %(default)s)",
    )
    p.add_argument(
        "--model-cache",
        type=Path,
        default=Path("var/plant-cache"),
        help="trained champions, by data fingerprint (default %(default)s)",
    )
    p.add_argument("--database", default="prognos", help="InfluxDB database (default %(default)s)")
    p.add_argument("--prefix", default="prognos/v1", help="MQTT topic prefix (default %(default)s)")
    p.add_argument(
        "--policy",
        type=Path,
        default=DEFAULT_POLICY,
        help="service policy: work orders go out automatically (default %(default)s)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="longest wait of each stop step, wall s (default %(default)s)",
    )
    p.add_argument(
        "--score-every",
        type=float,
        default=3.0,
        help="scoring interval in engine cycles (default %(default)s)",
    )
    p.add_argument(
        "--api-port", type=int, default=0, help="the web page and API port (default: a free one)"
    )
    p.add_argument(
        "--window-h",
        type=float,
        default=168.0,
        help="a work order is true when its asset fails within this many simulated h "
        "(default %(default)s)",
    )
    return p


def report_parser() -> argparse.ArgumentParser:
    """Arguments of `prognos plant report`."""
    p = argparse.ArgumentParser(
        prog="prognos plant report",
        description="The replay report of a finished `prognos plant` run: per failure, whether "
        "a work order came before it and the lead time; false work orders per asset-month; "
        "readings lost end to end; latency. Written as report.json and report.txt too.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the text")
    p.add_argument("--window-h", type=float, default=168.0, help="see `prognos plant --help`")
    return p


def write_report(run_dir: Path, window_h: float) -> dict[str, Any]:
    """Build the report from the run folder and write report.json and report.txt."""
    report = build_report(load_inputs(run_dir), window_h=window_h)
    (run_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (run_dir / "report.txt").write_text(format_report(report) + "\n")
    return report


def report_main(argv: Sequence[str]) -> int:
    """`prognos plant report`."""
    args = report_parser().parse_args(list(argv))
    try:
        report = write_report(args.run_dir, args.window_h)
    except FileNotFoundError as exc:
        _say(f"prognos plant report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _say(json.dumps(report, indent=1) if args.json else format_report(report))
    return EXIT_LOST if report["readings"]["lost"] else EXIT_OK


def _configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def run_main(argv: Sequence[str]) -> int:
    """`prognos plant`: returns the exit code."""
    args = run_parser().parse_args(list(argv))
    _configure_logging()
    missing = [
        n
        for n in ("PROGNOS_MQTT_HOST", "PROGNOS_MQTT_PORT", "PROGNOS_INFLUX_URL")
        if n not in os.environ
    ]
    if missing:
        _say(
            f"prognos plant: set {', '.join(missing)} (scripts/services.py run -- prognos plant)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    opts = RunOptions(
        run_dir=(args.run_dir or Path("var/plant") / f"run-{stamp}").resolve(),
        duration_s=args.duration,
        speed=args.speed,
        fleet=args.fleet.resolve(),
        holdout=parse_units(args.holdout),
        cache=args.model_cache.resolve(),
        database=args.database,
        prefix=args.prefix,
        policy=args.policy.resolve(),
        drain_timeout_s=args.drain_timeout,
        score_every_cycles=args.score_every,
        api_port=args.api_port,
        window_h=args.window_h,
    )
    opts.run_dir.mkdir(parents=True, exist_ok=True)
    flag = _StopFlag()
    signal.signal(signal.SIGINT, flag)
    signal.signal(signal.SIGTERM, flag)
    job = MainJob(opts)
    try:
        job.start()
        _say(
            f"plant running: run folder {opts.run_dir}; web page and API {job.api_url}/ (log "
            f"in with the token in {job.login_token_path}); service system "
            f"{job.fake.webhook_url}; Ctrl-C stops",
            flush=True,
        )
        job.monitor(flag)
        _say("stopping: plant, agents (draining), ingester, scorer, deliveries ...", flush=True)
        job.stop()
    except (PlantError, FileNotFoundError, ValueError) as exc:
        log.error("plant_failed", error=str(exc))  # noqa: TRY400 - the message says it all
        job.abort()
        return EXIT_USAGE
    except BaseException:
        job.abort()
        raise
    report = write_report(opts.run_dir, opts.window_h)
    _say(format_report(report))
    _say(f"report: {opts.run_dir / 'report.json'}")
    if job.died:
        _say(f"FAILED: {', '.join(job.died)} stopped during the run (logs in {job.logs})")
        return EXIT_LOST
    return EXIT_LOST if report["readings"]["lost"] else EXIT_OK


def main(argv: Sequence[str]) -> int:
    """`prognos plant [report RUN_DIR]`."""
    if argv and argv[0] == "report":
        return report_main(argv[1:])
    return run_main(argv)
