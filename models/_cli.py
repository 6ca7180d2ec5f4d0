"""``prognos train``, ``prognos evaluate`` and ``prognos models``: the registry's command line.

- ``prognos train TARGET`` runs a trainer from `TRAINERS` on raw data, stores the result as the next
  version in the registry, and with ``--promote`` makes it the champion.
- ``prognos evaluate NAME`` recomputes a registered model's metrics from the raw data (the
  trainer's evaluator on the stored estimator, or, for trainers without one, a retrain with the
  stored seed and parameters) and compares them with the stored ones: exit 1 on a mismatch.
- ``prognos models list|show|promote`` inspects the registry and moves the champion pointer.

Exit codes: 0 ok, 1 a metric did not reproduce, 2 usage, missing data or a registry error.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models._base import TrainRequest, TrainResult, fingerprint
from models._registry import Registry, RegistryError, default_root

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
"""The shared data sets, beside the project (``../shared/datasets``)."""

REPORT = Path(__file__).resolve().parent / "REPORT.md"
"""Where ``prognos models report`` writes by default."""

_CMAPSS = tuple(DATASETS / "cmapss" / f"{p}_FD001.txt" for p in ("train", "test", "RUL"))
_AI4I = (DATASETS / "ai4i2020" / "ai4i2020.csv",)
_HYDRAULIC = tuple(
    DATASETS / "hydraulic" / f"{name}.txt"
    for name in ("profile", "TS1", "TS2", "TS3", "TS4", "FS1", "FS2", "VS1", "CE", "CP", "SE")
)


@dataclass(frozen=True, slots=True)
class Target:
    """A trainable target: its trainer, its default data and how to re-evaluate a stored model.

    Parameters
    ----------
    trainer : str
        ``"module:function"``, a ``(TrainRequest) -> TrainResult``; imported when used, so a
        missing module only fails the commands that need it.
    data : tuple of Path
        Default raw data files.
    evaluator : str or None
        ``"module:function"``, ``(estimator, TrainRequest) -> metrics``; None: ``evaluate``
        retrains with the stored request and compares.
    help : str
    """

    trainer: str
    data: tuple[Path, ...]
    evaluator: str | None = None
    help: str = ""


TRAINERS: dict[str, Target] = {
    "cmapss_rul": Target(
        "models._train_rul:train_cmapss_rul",
        _CMAPSS,
        "models._train_rul:evaluate_cmapss_rul",
        "C-MAPSS remaining useful life with 80 % conformal intervals",
    ),
    "cmapss_failure": Target(
        "models._failure:train_cmapss_failure",
        _CMAPSS,
        None,
        "C-MAPSS probability of failure within N cycles",
    ),
    "ai4i_failure": Target(
        "models._failure:train_ai4i_failure", _AI4I, None, "AI4I 2020 machine failure probability"
    ),
    "ai4i_horizon": Target(
        "models._ai4i_horizon:train_ai4i_horizon",
        _AI4I,
        None,
        "AI4I 2020 machine failure within the next N products",
    ),
    "tool_wear": Target(
        "models._consumable:train_tool_wear", _AI4I, None, "AI4I 2020 tool wear (consumable life)"
    ),
    "hydraulic_cooler": Target(
        "models._hydraulic:train_hydraulic_cooler",
        _HYDRAULIC,
        None,
        "UCI hydraulic rig: cooler at reduced efficiency or close to total failure",
    ),
}
"""Target name -> trainer. The name is the registry name of what it trains."""


class CliError(Exception):
    """A usage, data or registry problem: printed as one line, exit code 2."""


def _import(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise CliError(f"{ref}: module {module_name} is not available in this install") from exc
    try:
        func: Callable[..., Any] = getattr(module, attr)
    except AttributeError as exc:
        raise CliError(f"{ref}: {module_name} has no {attr}") from exc
    return func


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("prognos.models")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _parse_param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _format_metrics(metrics: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )


# ------------------------------------------------------------------------------------ train


def train_parser() -> argparse.ArgumentParser:
    """Arguments of ``prognos train``."""
    p = argparse.ArgumentParser(
        prog="prognos train",
        description="Train a target on raw data and store it in the model registry.",
        epilog="targets: " + "; ".join(f"{name}: {t.help}" for name, t in TRAINERS.items()),
    )
    p.add_argument("target", choices=sorted(TRAINERS), help="what to train")
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        help="raw data files (default: the target's files in ../shared/datasets)",
    )
    p.add_argument("--registry", type=Path, help=f"registry root (default: {default_root()})")
    p.add_argument("--seed", type=int, default=0, help="seed for splits and estimators")
    p.add_argument("--max-units", type=int, help="use only the first N engines/machines (tests)")
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="trainer parameter (JSON value), e.g. --param max_iter=100",
    )
    p.add_argument("--promote", action="store_true", help="make the new version the champion")
    p.add_argument(
        "--if-missing",
        action="store_true",
        help="skip if the champion came from the same request and data bytes (set-up scripts)",
    )
    return p


def train_main(argv: Sequence[str]) -> int:
    """``prognos train``: returns the exit code."""
    args = train_parser().parse_args(list(argv))
    _setup_logging()
    target = TRAINERS[args.target]
    request = TrainRequest(
        data=tuple(args.data or target.data),
        seed=args.seed,
        max_units=args.max_units,
        params=dict(args.param),
    )
    try:
        _check_data(request.data)
        trainer = _import(target.trainer)
        registry = Registry(args.registry)
        if args.if_missing and _up_to_date(registry, args.target, request, target):
            _say(f"train: {args.target} champion is up to date in {registry.root}; nothing to do")
            return 0
        _say(f"train: {args.target} on {', '.join(str(p) for p in request.data)}")
        started = time.monotonic()
        result: TrainResult = trainer(request)
        _say(f"train: fitted in {time.monotonic() - started:.1f} s")
        version = registry.save(result, request=_request_dict(request, target))
        if args.promote:
            registry.promote(result.name, version)
    except (CliError, RegistryError, FileNotFoundError, ValueError) as exc:
        _say(f"train: error: {exc}")
        return 2
    champion = " (champion)" if args.promote else ""
    _say(f"train: stored {result.name} {version}{champion} in {registry.root / result.name}")
    print(json.dumps({"name": result.name, "version": version, "metrics": dict(result.metrics)}))
    return 0


def _up_to_date(registry: Registry, name: str, request: TrainRequest, target: Target) -> bool:
    """True when the champion of `name` came from the same data bytes, request and trainer code."""
    if registry.champion(name) is None:
        return False
    meta = registry.metadata(name)
    if meta.get("request") != _request_dict(request, target):
        return False
    stored = [Path(p) for p in meta["data"]["paths"]]
    return all(p.exists() for p in stored) and fingerprint(stored) == meta["data"]["sha256"]


def _check_data(paths: Sequence[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"data not found: {', '.join(missing)}")


_FIRST_PARTY = ("models", "prognos_contract")


def _request_dict(request: TrainRequest, target: Target) -> dict[str, Any]:
    return {
        "data": [str(p) for p in request.data],
        "seed": request.seed,
        "max_units": request.max_units,
        "params": dict(request.params),
        # The training code too: after an edit of the trainer or what it imports, --if-missing
        # retrains; an edit elsewhere in models/ leaves the champion alone.
        "code_sha256": fingerprint(trainer_sources(target.trainer)),
    }


def trainer_sources(ref: str) -> list[Path]:
    """List the source files a trainer's models depend on, sorted by path.

    The module of the trainer ``"module:function"`` and the first-party modules (`models`,
    `prognos_contract`) it imports, directly or not, read from their ``import`` statements. A name
    a package re-exports counts as the module that defines it, so a trainer does not depend on
    every module of a package whose ``__init__`` it passes through.
    """
    seen: set[Path] = set()
    todo = [ref.partition(":")[0]]
    while todo:
        path = _source(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += [mod if name is None else _origin(mod, name) for mod, name in _imports(path)]
    return sorted(seen)


def _source(module: str) -> Path | None:
    """The file of a first-party module, None for any other."""
    if module.partition(".")[0] not in _FIRST_PARTY:
        return None
    base = Path(__file__).resolve().parent.parent.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def _imports(path: Path) -> Iterator[tuple[str, str | None]]:
    """(module, name) of every absolute import in `path`; name None for ``import module``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from ((node.module, alias.name) for alias in node.names)


def _origin(module: str, name: str) -> str:
    """The module that ``from module import name`` reads: a submodule, or a re-export's source."""
    if _source(f"{module}.{name}") is not None:
        return f"{module}.{name}"
    init = _source(module)
    if init is not None and init.name == "__init__.py":
        return next((m for m, n in _imports(init) if n == name), module)
    return module


# ------------------------------------------------------------------------------------ evaluate


def evaluate_parser() -> argparse.ArgumentParser:
    """Arguments of ``prognos evaluate``."""
    p = argparse.ArgumentParser(
        prog="prognos evaluate",
        description="Recompute a registered model's metrics from raw data; compare them.",
    )
    p.add_argument("name", help="registered model name, e.g. cmapss_rul")
    p.add_argument("--version", default="champion", help="version (default: the champion)")
    p.add_argument("--registry", type=Path, help=f"registry root (default: {default_root()})")
    p.add_argument("--data", type=Path, nargs="+", help="raw data (default: the stored paths)")
    p.add_argument(
        "--rtol", type=float, default=1e-6, help="relative tolerance of a match (default: 1e-6)"
    )
    return p


def evaluate_main(argv: Sequence[str]) -> int:
    """``prognos evaluate``: returns 0 when every stored metric is reproduced."""
    args = evaluate_parser().parse_args(list(argv))
    _setup_logging()
    try:
        registry = Registry(args.registry)
        loaded = registry.load(args.name, args.version)
        meta = loaded.metadata
        stored_request = meta.get("request") or {}
        data = tuple(args.data or (Path(p) for p in meta["data"]["paths"]))
        request = TrainRequest(
            data=data,
            seed=int(stored_request.get("seed", 0)),
            max_units=stored_request.get("max_units"),
            params=dict(stored_request.get("params", {})),
        )
        target = _target(args.name)
        _fingerprint_note(meta, data)
        _say(f"evaluate: {args.name} {loaded.version} on {', '.join(map(str, data))}")
        if target.evaluator is not None:
            metrics = dict(_import(target.evaluator)(loaded.estimator, request))
        else:
            _say("evaluate: no evaluator for this target: retraining with the stored request")
            metrics = dict(_import(target.trainer)(request).metrics)
    except (CliError, RegistryError, FileNotFoundError, ValueError, KeyError) as exc:
        _say(f"evaluate: error: {exc}")
        return 2
    stored: Mapping[str, float] = meta.get("metrics", {})
    ok = True
    print(f"{'metric':<24} {'stored':>14} {'recomputed':>14}  match")
    for key in sorted(set(stored) & set(metrics)):
        a, b = float(stored[key]), float(metrics[key])
        same = math.isclose(a, b, rel_tol=args.rtol, abs_tol=1e-12)
        ok &= same
        print(f"{key:<24} {a:>14.6g} {b:>14.6g}  {'yes' if same else 'NO'}")
    if not set(stored) & set(metrics):
        _say("evaluate: no metric in common between the stored and the recomputed figures")
        return 1
    _say("evaluate: every stored metric reproduced" if ok else "evaluate: MISMATCH")
    return 0 if ok else 1


def _target(name: str) -> Target:
    if name not in TRAINERS:
        raise CliError(f"no trainer for {name!r}: known {sorted(TRAINERS)}")
    return TRAINERS[name]


def _fingerprint_note(meta: Mapping[str, Any], data: Sequence[Path]) -> None:
    try:
        now = fingerprint(data)
    except FileNotFoundError as exc:
        raise CliError(f"data not found: {exc.filename}") from exc
    if now != meta["data"]["sha256"]:
        _say("evaluate: note: the data's fingerprint differs from the one the model was trained on")


# ------------------------------------------------------------------------------------ models


def _report(args: argparse.Namespace, registry: Registry) -> int:
    from models._report import write_report  # noqa: PLC0415 - only this action needs it

    if args.train:
        for name in TRAINERS:
            argv = ["--registry", str(registry.root), "--promote", "--if-missing"]
            argv += ["--max-units", str(args.max_units)] if args.max_units else []
            code = train_main([name, *argv])
            if code != 0:
                _say(f"models: report: training {name} failed (exit {code}); stopping")
                return code
    out = write_report(registry, args.out)
    _say(f"models: wrote {out}")
    return 0


def models_parser() -> argparse.ArgumentParser:
    """Arguments of ``prognos models``."""
    p = argparse.ArgumentParser(prog="prognos models", description="Inspect the model registry.")
    p.add_argument("--registry", type=Path, help=f"registry root (default: {default_root()})")
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="every version of every model, champions marked")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    show = sub.add_parser("show", help="one version's metadata as JSON")
    show.add_argument("name")
    show.add_argument("--version", default="champion")
    promote = sub.add_parser("promote", help="make a version the champion")
    promote.add_argument("name")
    promote.add_argument("version")
    report = sub.add_parser("report", help="write models/REPORT.md from the champions")
    report.add_argument("--out", type=Path, default=REPORT, help="default: %(default)s")
    report.add_argument(
        "--train",
        action="store_true",
        help="first train every target whose champion is missing or stale (--promote --if-missing)",
    )
    report.add_argument("--max-units", type=int, help="with --train: first N units only (tests)")
    return p


def models_main(argv: Sequence[str]) -> int:
    """``prognos models``: returns the exit code."""
    args = models_parser().parse_args(list(argv))
    registry = Registry(args.registry)
    try:
        if args.action == "list":
            rows = registry.list()
            if args.json:
                print(json.dumps(rows, indent=2))
            elif not rows:
                _say(f"models: no models in {registry.root}")
            for row in [] if args.json else rows:
                mark = "*" if row.get("champion") else " "
                detail = row.get("error") or _format_metrics(row.get("metrics", {}))
                print(f"{mark} {row['name']:<16} {row['version']:<6} {detail}")
        elif args.action == "show":
            print(json.dumps(registry.metadata(args.name, args.version), indent=2))
        elif args.action == "report":
            return _report(args, registry)
        else:
            registry.promote(args.name, args.version)
            _say(f"models: {args.name} {args.version} is now the champion")
    except RegistryError as exc:
        _say(f"models: error: {exc}")
        return 2
    return 0
