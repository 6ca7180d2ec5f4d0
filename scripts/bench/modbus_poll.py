#!/usr/bin/env python3
"""Benchmark the edge agent's Modbus poll path (issue 3): request count, and throughput vs pymodbus.

Part 1, per firmware profile: the requests one full poll cycle sends (every poll group once, the
sum over groups) as `compile_plan` plans them, against `theoretical_min_requests`. They must be
equal; the script exits 1 when a plan needs more.

Part 2, per profile with a golden ``registers.json``: registers per second read from a real
pymodbus TCP server on loopback, running in a child process (its own interpreter, GIL and event
loop), by two clients in this process, each in a tight loop with no sleep between polls:

- ``pymodbus``, the baseline: a bare `AsyncModbusTcpClient` sending exactly the plan's requests
  (same function codes, addresses, counts and unit);
- ``prognos``: the same requests through the agent's full poll path, `ModbusWorker.poll` for each
  group: `ModbusTcpTransport.read` per request, then `CompiledPlan.decode` into readings, and the
  device counters.

Runs alternate (pymodbus, prognos, pymodbus, prognos, ...) and each side's figure is the median of
its runs. The ratio is prognos / pymodbus; issue 3 asks for >= 0.8. It is reported, and only fails
the exit status with ``--strict`` (timings are never test assertions).

    .venv/bin/python scripts/bench/modbus_poll.py                     # about 45 s
    .venv/bin/python scripts/bench/modbus_poll.py --duration-s 0.5 --repeats 1 --json out.json

See scripts/bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pymodbus
from pymodbus.client import AsyncModbusTcpClient

from edge_agent._model import ReadRequest
from edge_agent._planner import CompiledPlan, PlanLimits, compile_plan, theoretical_min_requests
from edge_agent._profile import Profile, load_profile
from edge_agent.sources import ModbusDevice, ModbusTcpTransport, ModbusWorker

ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = ROOT / "firmware_profiles"
GOLDEN_DIR = ROOT / "tests" / "firmware_profiles"
HOST = "127.0.0.1"
RATIO_TARGET = 0.8
TIMEOUT_S = 2.0
"""Connect and response timeout of both clients: far above a loopback round trip."""
SERVER_START_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------
# Figures


@dataclass(frozen=True, slots=True)
class PlanFigures:
    """Part 1 for one profile: planned requests per full poll cycle against the minimum."""

    profile: str
    groups: int
    requests: int
    minimum: int

    @property
    def equal(self) -> bool:
        """Whether the plan sends exactly the theoretical minimum of requests."""
        return self.requests == self.minimum

    @property
    def over(self) -> bool:
        """Whether the plan sends more requests than the minimum (the failure)."""
        return self.requests > self.minimum


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run of one client: full poll cycles done in `seconds` of wall-clock time."""

    client: str
    pair: int
    seconds: float
    cpu_s: float
    polls: int
    requests: int
    registers: int

    @property
    def polls_per_s(self) -> float:
        """Full poll cycles per second."""
        return self.polls / self.seconds

    @property
    def registers_per_s(self) -> float:
        """Registers (and coils or discrete inputs, one each) per second."""
        return self.registers / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        """CPU time of this (the client) process per request, in microseconds."""
        return 1e6 * self.cpu_s / self.requests


@dataclass(slots=True)
class Throughput:
    """Part 2 for one profile: every run of both clients, and their medians."""

    profile: str
    requests_per_poll: int
    registers_per_poll: int
    readings_per_poll: int
    runs: list[Run] = field(default_factory=list)

    def _of(self, client: str) -> list[Run]:
        return [run for run in self.runs if run.client == client]

    def registers_per_s(self, client: str) -> float:
        """The median registers per second of one client's runs."""
        return statistics.median(run.registers_per_s for run in self._of(client))

    def polls_per_s(self, client: str) -> float:
        """The median poll cycles per second of one client's runs."""
        return statistics.median(run.polls_per_s for run in self._of(client))

    def cpu_us_per_request(self, client: str) -> float:
        """The median client CPU time per request of one client's runs, in microseconds."""
        return statistics.median(run.cpu_us_per_request for run in self._of(client))

    @property
    def pair_ratios(self) -> list[float]:
        """Prognos over pymodbus registers per second, for each pair of back-to-back runs."""
        base = {run.pair: run.registers_per_s for run in self._of("pymodbus")}
        return [run.registers_per_s / base[run.pair] for run in self._of("prognos")]

    @property
    def ratio(self) -> float:
        """The median of `pair_ratios`: the figure held against `RATIO_TARGET`."""
        return statistics.median(self.pair_ratios)


def plan_figures(profile: Profile, *, unit: int) -> tuple[CompiledPlan, PlanFigures]:
    """Compile a profile with the default limits and count its requests per full cycle."""
    limits = PlanLimits()
    plan = compile_plan(profile, asset="bench", unit=unit, limits=limits)
    figures = PlanFigures(
        profile=profile.profile_id,
        groups=len(plan.groups),
        requests=len(plan.requests),
        minimum=theoretical_min_requests(profile, limits),
    )
    return plan, figures


# ---------------------------------------------------------------------------------------------
# The server: FakeModbusDevice (a real pymodbus ModbusTcpServer) in a child process


def _serve(paths: Sequence[Path]) -> None:
    """Child process: serve each registers.json on its own port; stop when stdin closes.

    Prints the ports as one JSON list on stdout once every server listens.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    modbus_device: Any = importlib.import_module("support.modbus_device")

    async def main() -> None:
        devices = [modbus_device.FakeModbusDevice.from_registers_json(path) for path in paths]
        ports = [await device.start_tcp(host=HOST) for device in devices]
        print(json.dumps(ports), flush=True)
        stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        while not stdin_closed.done():
            # The fake device logs every request it sees; drop the log so memory stays flat.
            for device in devices:
                device.requests.clear()
            await asyncio.wait({stdin_closed}, timeout=1.0)
        for device in devices:
            await device.stop()

    asyncio.run(main())


@contextlib.contextmanager
def modbus_servers(paths: Sequence[Path]) -> Iterator[list[int]]:
    """Start the server child process; yields one loopback port per registers.json."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", *map(str, paths)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Modbus server process exited ({proc.wait()}) before serving")
        ports: list[int] = json.loads(line)
        yield ports
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# The two clients


Plan = tuple[Path, CompiledPlan]
"""A compiled plan and the golden registers.json its device serves."""
Poll = Callable[[], Awaitable[int]]
"""One full poll cycle; returns how many readings (or blocks, for the bare client) it produced."""


async def _timed(poll: Poll, duration_s: float) -> tuple[int, float, float]:
    """Run `poll` back to back for `duration_s`; (polls, wall seconds, CPU seconds)."""
    polls = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + duration_s
    while True:
        await poll()
        polls += 1
        now = time.perf_counter()
        if now >= deadline:
            return polls, now - start, time.process_time() - cpu


def _bare_call(client: AsyncModbusTcpClient, request: ReadRequest) -> Callable[..., Awaitable[Any]]:
    calls: dict[str, Callable[..., Awaitable[Any]]] = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }
    return calls[request.kind]


async def measure(
    port: int,
    plan: CompiledPlan,
    *,
    duration_s: float,
    warmup_s: float,
    repeats: int,
    progress: Callable[[str], None],
) -> Throughput:
    """Time both clients on one server port, in `repeats` pairs of back-to-back runs.

    Both clients connect first and stay connected; each is warmed up for `warmup_s`. Pairs then
    alternate their order (pymodbus first, then prognos first, ...) so that a drift in machine
    load does not favour one side.
    """
    requests = plan.requests
    bare = AsyncModbusTcpClient(HOST, port=port, timeout=TIMEOUT_S)
    calls = [(_bare_call(bare, r), r.address, r.count, r.unit) for r in requests]

    async def poll_pymodbus() -> int:
        # The bare minimum a client does with a read: send it, check the answer is not an error.
        for call, address, count, unit in calls:
            pdu = await call(address, count=count, device_id=unit)
            if pdu.isError():
                raise RuntimeError(f"{HOST}:{port} answered {pdu} to a bare read")
        return len(calls)

    transport = ModbusTcpTransport(host=HOST, port=port, timeout_s=TIMEOUT_S)
    worker = ModbusWorker(
        name="bench", link=transport, devices=[ModbusDevice(name="bench", asset="bench", plan=plan)]
    )
    groups = range(len(plan.groups))

    async def poll_prognos() -> int:
        # What the worker does when a group is due: read its requests, decode, count.
        return sum([len(await worker.poll("bench", group)) for group in groups])

    polls: dict[str, Poll] = {"pymodbus": poll_pymodbus, "prognos": poll_prognos}
    result = Throughput(
        profile=plan.profile.profile_id,
        requests_per_poll=len(requests),
        registers_per_poll=sum(r.count for r in requests),
        readings_per_poll=0,
    )
    try:
        if not await bare.connect():
            raise RuntimeError(f"pymodbus could not connect to {HOST}:{port}")
        result.readings_per_poll = await poll_prognos()  # also connects the transport
        for poll in polls.values():
            await _timed(poll, warmup_s)
        for pair in range(repeats):
            order = ("pymodbus", "prognos") if pair % 2 == 0 else ("prognos", "pymodbus")
            for client in order:
                count, seconds, cpu_s = await _timed(polls[client], duration_s)
                result.runs.append(
                    Run(
                        client=client,
                        pair=pair,
                        seconds=seconds,
                        cpu_s=cpu_s,
                        polls=count,
                        requests=count * result.requests_per_poll,
                        registers=count * result.registers_per_poll,
                    )
                )
            base, ours = result.runs[-2:] if order[0] == "pymodbus" else result.runs[-1:-3:-1]
            progress(
                f"  {result.profile:20s} pair {pair + 1:2d}/{repeats}: pymodbus "
                f"{base.registers_per_s:8,.0f} regs/s, prognos {ours.registers_per_s:8,.0f} "
                f"regs/s, ratio {ours.registers_per_s / base.registers_per_s:.2f}"
            )
    finally:
        bare.close()
        await worker.aclose()
    errors = dict(worker.states["bench"].counters.errors)
    if errors:
        raise RuntimeError(f"{HOST}:{port}: the Prognos poll path got errors {errors}")
    return result


# ---------------------------------------------------------------------------------------------
# Output


def environment() -> dict[str, object]:
    """What the figures depend on besides the code."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pymodbus": pymodbus.__version__,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def table(rows: Sequence[Sequence[str]], *, right: set[int]) -> str:
    """Rows as aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    )


def plan_table(figures: Sequence[PlanFigures]) -> str:
    """Part 1 as a table."""
    rows = [("profile", "groups", "requests/cycle", "theoretical min", "equal")]
    rows += [
        (f.profile, str(f.groups), str(f.requests), str(f.minimum), "yes" if f.equal else "NO")
        for f in figures
    ]
    return table(rows, right={1, 2, 3})


def throughput_table(results: Sequence[Throughput]) -> str:
    """Part 2 as a table, one row per profile: medians, then the median pair ratio and its range."""
    rows = [
        (
            "profile",
            "req/poll",
            "regs/poll",
            "polls/s",
            "",
            "regs/s",
            "",
            "CPU us/req",
            "",
            "ratio",
            "pairs min-max",
        ),
        ("", "", "", "pymodbus", "prognos", "pymodbus", "prognos", "pymodbus", "prognos", "", ""),
    ]
    rows += [
        (
            t.profile,
            str(t.requests_per_poll),
            str(t.registers_per_poll),
            f"{t.polls_per_s('pymodbus'):,.0f}",
            f"{t.polls_per_s('prognos'):,.0f}",
            f"{t.registers_per_s('pymodbus'):,.0f}",
            f"{t.registers_per_s('prognos'):,.0f}",
            f"{t.cpu_us_per_request('pymodbus'):,.0f}",
            f"{t.cpu_us_per_request('prognos'):,.0f}",
            f"{t.ratio:.2f}",
            f"{min(t.pair_ratios):.2f}-{max(t.pair_ratios):.2f}",
        )
        for t in results
    ]
    return table(rows, right=set(range(1, 11)))


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="modbus_poll.py",
        description=(
            "Benchmark the Modbus poll path: requests per poll cycle against the theoretical "
            "minimum, and registers/s of the Prognos poll path against a bare pymodbus client, "
            "both reading a real pymodbus TCP server on loopback (in a child process)."
        ),
        epilog="Exit status: 0 ok; 1 a plan needs more requests than the minimum, or (--strict) "
        f"a ratio is below {RATIO_TARGET}. A default run takes about profiles x (2 x repeats x "
        "duration + 2 x warm-up): 45 s for the 3 shipped profiles.",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=0.5,
        help="length of each timed run of one client, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=13,
        help="pairs of back-to-back runs (pymodbus, prognos) per profile; medians are reported "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=0.5,
        help="untimed polling per client and profile after connecting (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="only this profile (file stem in firmware_profiles/); repeat for several",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write every figure and run as JSON to PATH ('-': to stdout, and the report "
        "to stderr)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit 1 when a profile's ratio is below {RATIO_TARGET}",
    )
    parser.add_argument("--serve", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.warmup_s < 0 or args.repeats < 1:
        parser.error("--duration-s must be > 0, --warmup-s >= 0 and --repeats >= 1")
    return args


def load_profiles(names: Sequence[str] | None) -> list[tuple[Path, Profile]]:
    """The shipped profiles (or the named ones), with their files."""
    files = sorted(PROFILES_DIR.glob("*.yaml"))
    if names:
        known = {file.stem: file for file in files}
        missing = [name for name in names if name not in known]
        if missing:
            raise SystemExit(f"unknown profile(s) {missing}; known: {sorted(known)}")
        files = [known[name] for name in names]
    return [(file, load_profile(file)) for file in files]


def json_report(
    env: dict[str, object],
    args: argparse.Namespace,
    figures: Sequence[PlanFigures],
    results: Sequence[Throughput],
) -> dict[str, object]:
    """Every figure and run, for `--json`."""
    return {
        "environment": env,
        "settings": {
            "duration_s": args.duration_s,
            "repeats": args.repeats,
            "warmup_s": args.warmup_s,
            "ratio_target": RATIO_TARGET,
        },
        "plans": [asdict(f) | {"equal": f.equal} for f in figures],
        "plans_at_minimum": not any(f.over for f in figures),
        "throughput": [
            {
                "profile": t.profile,
                "requests_per_poll": t.requests_per_poll,
                "registers_per_poll": t.registers_per_poll,
                "readings_per_poll": t.readings_per_poll,
                "median": {
                    client: {
                        "registers_per_s": t.registers_per_s(client),
                        "polls_per_s": t.polls_per_s(client),
                        "cpu_us_per_request": t.cpu_us_per_request(client),
                    }
                    for client in ("pymodbus", "prognos")
                },
                "ratio": t.ratio,
                "pair_ratios": t.pair_ratios,
                "runs": [asdict(r) for r in t.runs],
            }
            for t in results
        ],
        "ratio_at_least_target": all(t.ratio >= RATIO_TARGET for t in results),
    }


Say = Callable[[str], None]


def part1(names: Sequence[str] | None, say: Say) -> tuple[list[PlanFigures], list[Plan]]:
    """Compile every profile, print the request counts; returns them and the servable plans."""
    plans: list[Plan] = []
    figures: list[PlanFigures] = []
    for file, profile in load_profiles(names):
        golden = GOLDEN_DIR / file.stem / "registers.json"
        unit = json.loads(golden.read_text()).get("unit", 1) if golden.is_file() else 1
        plan, fig = plan_figures(profile, unit=unit)
        figures.append(fig)
        if golden.is_file():
            plans.append((golden, plan))
        else:
            say(f"  {file.stem}: no {golden.relative_to(ROOT)}, so no throughput figures")
    say("")
    say("Part 1: Modbus requests per full poll cycle (every group once) vs theoretical minimum")
    say(plan_table(figures))
    say(f"plans at the theoretical minimum: {'no' if any(f.over for f in figures) else 'yes'}")
    return figures, plans


def part2(plans: Sequence[Plan], args: argparse.Namespace, say: Say) -> list[Throughput]:
    """Serve the golden registers, time both clients on each plan, print the figures."""
    results: list[Throughput] = []
    total = len(plans) * 2 * (args.repeats * args.duration_s + args.warmup_s)
    say("")
    say(
        f"Part 2: registers/s from a pymodbus TCP server (child process), bare pymodbus vs "
        f"Prognos poll path, {args.repeats} pairs of {args.duration_s:g} s runs per profile "
        f"(about {total:.0f} s)"
    )
    with modbus_servers([golden for golden, _ in plans]) as ports:
        for (_, plan), port in zip(plans, ports, strict=True):
            coro = measure(
                port,
                plan,
                duration_s=args.duration_s,
                warmup_s=args.warmup_s,
                repeats=args.repeats,
                progress=say,
            )
            results.append(asyncio.run(coro))
    say("")
    say(
        f"Part 2 results: medians of {args.repeats} runs per client; ratio = median over pairs "
        "of prognos/pymodbus regs/s"
    )
    say(throughput_table(results))
    lowest = min(results, key=lambda t: t.ratio)
    verdict = "yes" if lowest.ratio >= RATIO_TARGET else "no"
    say(f"ratio >= {RATIO_TARGET}: {verdict} (lowest {lowest.ratio:.2f}, {lowest.profile})")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run both parts, print the report, and return the exit status."""
    args = parse_args(argv)
    if args.serve:
        _serve(args.serve)
        return 0
    out: TextIO = sys.stderr if args.json == "-" else sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    env = environment()
    say(
        f"Modbus poll benchmark: Python {env['python']} ({env['implementation']}), pymodbus "
        f"{env['pymodbus']}, {env['cpu_count']} CPUs ({env['cpus_usable']} usable), "
        f"{env['platform']}"
    )
    figures, plans = part1(args.profile, say)
    results = part2(plans, args, say) if plans else []

    if args.json:
        text = json.dumps(json_report(env, args, figures, results), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
            say(f"figures written to {args.json}")
    if any(f.over for f in figures):
        say("FAIL: a plan needs more requests than the theoretical minimum")
        return 1
    if args.strict and any(t.ratio < RATIO_TARGET for t in results):
        say(f"FAIL (--strict): a ratio is below {RATIO_TARGET}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
