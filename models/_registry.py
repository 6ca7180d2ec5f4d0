"""The model registry: versioned artifacts on a filesystem, one champion per name.

Theory of operation
-------------------
Layout under the root (``PROGNOS_MODEL_REGISTRY``; default ``var/models`` in the working
directory)::

    {root}/{name}/v0001/model.joblib     the fitted estimator (joblib pickle)
    {root}/{name}/v0001/metadata.json    features, data fingerprint, params, metrics, split units,
                                          creation time, library versions, the artifact's SHA-256
    {root}/{name}/v0001/{figure}.png     the trainer's figures
    {root}/{name}/CHAMPION               the champion's version, one line

Rules
-----
- A version directory is written in full under a temporary name, then renamed into place: a
  reader sees a complete version or none. Versions are never rewritten.
- ``CHAMPION`` is replaced by an atomic rename, so the scorer never reads half a pointer.
- ``load`` checks the artifact's SHA-256 against its metadata before unpickling: a truncated or
  swapped file is a `RegistryError` naming the path, never a silently different model.
- Only load registries you trust: a joblib artifact is a pickle and runs code when loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib

from models._base import TrainResult

ENV_ROOT = "PROGNOS_MODEL_REGISTRY"
"""Environment variable naming the registry root."""

DEFAULT_ROOT = Path("var/models")
"""Registry root when ``PROGNOS_MODEL_REGISTRY`` is not set (relative to the working directory)."""

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CHAMPION_FILE = "CHAMPION"
CHAMPION = "champion"
"""The version alias that `Registry.load` resolves through the ``CHAMPION`` pointer."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^v(\d{4,})$")
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "joblib", "prognos")


class RegistryError(Exception):
    """The registry cannot give what was asked: unknown name or version, or a corrupt artifact.

    The message names the path involved. Callers stop (a scorer without a model cannot score) or,
    for one bad version, fall back to another version explicitly.
    """


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A registered model: the estimator and its metadata.

    Parameters
    ----------
    name, version : str
    estimator : object
        The fitted estimator, as the trainer returned it.
    metadata : Mapping
        The contents of ``metadata.json``.
    path : Path
        The version directory.
    """

    name: str
    version: str
    estimator: Any
    metadata: Mapping[str, Any]
    path: Path


def default_root() -> Path:
    """``$PROGNOS_MODEL_REGISTRY`` if set, else ``var/models``."""
    env = os.environ.get(ENV_ROOT)
    return Path(env) if env else DEFAULT_ROOT


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries an artifact depends on."""
    versions = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            versions[lib] = importlib_metadata.version(lib)
        except importlib_metadata.PackageNotFoundError:
            versions[lib] = "absent"
    return versions


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _json_ready(value: Any) -> Any:  # noqa: ANN401 - any JSON-able tree
    """Numpy scalars and arrays, tuples and paths as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_ready(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_ready(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


class Registry:
    """A filesystem model registry.

    Parameters
    ----------
    root : Path, optional
        Registry root; default `default_root` ().

    Examples
    --------
    >>> import tempfile
    >>> reg = Registry(Path(tempfile.mkdtemp()))
    >>> reg.list()
    []
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # ------------------------------------------------------------------ writing

    def save(
        self,
        result: TrainResult,
        *,
        request: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> str:
        """Store `result` as the next version of ``result.name``; return the version.

        Parameters
        ----------
        result : TrainResult
        request : Mapping, optional
            How it was trained (seed, max_units, params): lets ``prognos evaluate`` redo it.
        now : datetime, optional
            Creation time (UTC); default the current time.
        """
        name = self._check_name(result.name)
        base = self.root / name
        base.mkdir(parents=True, exist_ok=True)
        created = (now or datetime.now(UTC)).astimezone(UTC)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
        try:
            model_path = staging / MODEL_FILE
            joblib.dump(result.estimator, model_path, compress=3)
            for stem, png in result.figures.items():
                (staging / f"{self._check_name(stem)}.png").write_bytes(png)
            meta = {
                "name": name,
                "kind": result.kind,
                "created_at": created.isoformat(),
                "estimator_class": type(result.estimator).__qualname__,
                "estimator_module": type(result.estimator).__module__,
                "features": list(result.features),
                "params": result.params,
                "metrics": result.metrics,
                "data": {
                    "paths": list(result.data.paths),
                    "sha256": result.data.sha256,
                    "rows": result.data.rows,
                },
                "split": result.split,
                "request": request or {},
                "figures": sorted(f"{stem}.png" for stem in result.figures),
                "notes": result.notes,
                "artifact_sha256": _sha256(model_path),
                "libraries": library_versions(),
            }
            while True:
                version = self._next_version(name)
                meta["version"] = version
                (staging / METADATA_FILE).write_text(
                    json.dumps(_json_ready(meta), indent=2, sort_keys=True) + "\n"
                )
                try:
                    staging.rename(base / version)  # atomic; fails if another writer took it
                except OSError:
                    if (base / version).exists():
                        continue
                    raise
                return version
        finally:
            if staging.exists():
                for child in staging.iterdir():
                    child.unlink()
                staging.rmdir()

    def promote(self, name: str, version: str) -> None:
        """Make `version` the champion of `name` (atomic pointer replacement)."""
        path = self._version_dir(name, version)
        self._read_metadata(path)  # never point the scorer at a broken version
        pointer = self.root / name / CHAMPION_FILE
        tmp = pointer.with_name(f".{CHAMPION_FILE}.{os.getpid()}.tmp")
        tmp.write_text(version + "\n")
        tmp.replace(pointer)

    # ------------------------------------------------------------------ reading

    def names(self) -> list[str]:
        """Registered model names, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def versions(self, name: str) -> list[str]:
        """Versions of `name`, oldest first."""
        base = self.root / self._check_name(name)
        if not base.is_dir():
            return []
        found = [p.name for p in base.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def champion(self, name: str) -> str | None:
        """The champion version of `name`, or None."""
        pointer = self.root / self._check_name(name) / CHAMPION_FILE
        if not pointer.exists():
            return None
        version = pointer.read_text().strip()
        if not _VERSION.match(version):
            raise RegistryError(f"{pointer}: not a version: {version!r}")
        return version

    def list(self) -> list[dict[str, Any]]:
        """One summary per version of every name: name, version, champion, created_at, metrics."""
        rows: list[dict[str, Any]] = []
        for name in self.names():
            champ = self.champion(name)
            for version in self.versions(name):
                path = self.root / name / version
                try:
                    meta = self._read_metadata(path)
                except RegistryError as exc:
                    rows.append({"name": name, "version": version, "error": str(exc)})
                    continue
                rows.append(
                    {
                        "name": name,
                        "version": version,
                        "champion": version == champ,
                        "kind": meta.get("kind"),
                        "created_at": meta.get("created_at"),
                        "metrics": meta.get("metrics", {}),
                    }
                )
        return rows

    def resolve(self, name: str, version: str = CHAMPION) -> str:
        """`version`, or the champion's version when `version` is ``"champion"``."""
        if version != CHAMPION:
            return version
        champ = self.champion(name)
        if champ is None:
            base = self.root / name
            raise RegistryError(
                f"{base}: no champion for {name!r} "
                f"(versions: {self.versions(name) or 'none'}; run 'prognos train {name} --promote')"
            )
        return champ

    def metadata(self, name: str, version: str = CHAMPION) -> dict[str, Any]:
        """The metadata of one version (no unpickling)."""
        return self._read_metadata(self._version_dir(name, self.resolve(name, version)))

    def load(self, name: str, version: str = CHAMPION) -> LoadedModel:
        """The estimator and metadata of `name` at `version` (default: the champion).

        Raises
        ------
        RegistryError
            Unknown name or version, no champion, missing or corrupt files: names the path.
        """
        resolved = self.resolve(name, version)
        path = self._version_dir(name, resolved)
        meta = self._read_metadata(path)
        model_path = path / MODEL_FILE
        if not model_path.is_file():
            raise RegistryError(f"{model_path}: model artifact is missing")
        if _sha256(model_path) != meta.get("artifact_sha256"):
            raise RegistryError(
                f"{model_path}: SHA-256 does not match {path / METADATA_FILE} (corrupt or replaced)"
            )
        try:
            estimator = joblib.load(model_path)
        except Exception as exc:
            raise RegistryError(f"{model_path}: cannot be loaded: {exc}") from exc
        return LoadedModel(
            name=name, version=resolved, estimator=estimator, metadata=meta, path=path
        )

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_name(name: str) -> str:
        if not _NAME.match(name):
            raise RegistryError(f"invalid model name {name!r}: must match {_NAME.pattern}")
        return name

    def _version_dir(self, name: str, version: str) -> Path:
        base = self.root / self._check_name(name)
        if not _VERSION.match(version):
            raise RegistryError(f"{base}: invalid version {version!r} (expected e.g. 'v0001')")
        path = base / version
        if not path.is_dir():
            raise RegistryError(
                f"{path}: no such model version (have: {self.versions(name) or 'none'})"
            )
        return path

    def _next_version(self, name: str) -> str:
        existing = self.versions(name)
        number = int(existing[-1][1:]) + 1 if existing else 1
        return f"v{number:04d}"

    @staticmethod
    def _read_metadata(path: Path) -> dict[str, Any]:
        meta_path = path / METADATA_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError as exc:
            raise RegistryError(f"{meta_path}: metadata is missing") from exc
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{meta_path}: unreadable metadata: {exc}") from exc
        if not isinstance(meta, dict) or "artifact_sha256" not in meta:
            raise RegistryError(f"{meta_path}: not a registry metadata file")
        return meta
