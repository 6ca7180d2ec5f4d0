"""Loading the asset registry from YAML or CSV, and the registry itself.

Rules:
1. Loading reads the file and (when given) the profiles folder; nothing else. Every problem of the
   file is collected and raised as one `RegistryError`, a line each, naming the file, the record
   (``line 7 (asset "pump-07")`` in CSV, ``assets[3] (asset "pump-07")`` in YAML), the key, the
   rule and the value (STYLE.md 4).
2. An asset id is unique; a second use is an error naming both records. A customer has one tier.
3. With a profiles folder, each asset's ``profile`` must exist there and cover the asset's model
   and firmware; a record without ``profile`` gets the one profile that covers them; its
   ``consumables`` must be consumables of that profile.
4. Unknown keys (YAML) and unknown columns (CSV) are errors, never ignored.
"""

from __future__ import annotations

import csv
import io
import reprlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from cloud.registry._model import Asset, Tier
from edge_agent._profile import ProfileError, ProfileLibrary

MAX_ERROR_LINES: Final = 50
"""Most problem lines in one `RegistryError` message (the rest are counted)."""
CSV_COLUMNS: Final = (
    "asset_id",
    "site",
    "customer",
    "tier",
    "model",
    "firmware",
    "profile",
    "serial",
    "asset_class",
    "team",
    "criticality",
    "commissioned",
    "operating_hours",
    "operating_hours_as_of",
    "warranty_end",
    "service_contract",
    "lat",
    "lon",
    "gateway",
    "consumables",
)
"""The columns a registry CSV may have, in the documented order (docs/registry.md)."""
_REQUIRED_COLUMNS: Final = frozenset({"asset_id"})


class RegistryError(ValueError):
    """The asset file is unreadable or breaks a rule; fix the file (never retried).

    Attributes:
        path: The file, as given.
        problems: One line per problem (the message holds at most `MAX_ERROR_LINES` of them).
    """

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        shown = list(self.problems[:MAX_ERROR_LINES])
        if len(self.problems) > MAX_ERROR_LINES:
            shown.append(f"{path}: ... and {len(self.problems) - MAX_ERROR_LINES} more problems.")
        super().__init__("\n".join(shown))


class AssetRegistry:
    """Every asset record of a site fleet, by id.

    Args:
        assets: The records; ids must be unique.
        source: Where they came from (a file name), for messages.

    Raises:
        RegistryError: two records share an id.
    """

    def __init__(self, assets: Iterable[Asset], *, source: str = "<assets>") -> None:
        self._by_id: dict[str, Asset] = {}
        problems = []
        for asset in assets:
            if asset.asset_id in self._by_id:
                problems.append(f"{source}: asset_id {asset.asset_id!r} is used twice.")
            self._by_id.setdefault(asset.asset_id, asset)
        if problems:
            raise RegistryError(source, problems)
        self.source = source

    def get(self, asset_id: str) -> Asset | None:
        """The record of ``asset_id``, or None for an asset the registry does not know."""
        return self._by_id.get(asset_id)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._by_id.values())

    def __repr__(self) -> str:
        return f"AssetRegistry({len(self)} assets from {self.source!r})"

    def sites(self) -> list[str]:
        """The sites of all assets, sorted."""
        return sorted({asset.site for asset in self})

    def at_site(self, site: str) -> list[Asset]:
        """The assets of ``site``, in file order."""
        return [asset for asset in self if asset.site == site]


# ---------------------------------------------------------------------------------------------
# Loading


def load_registry(path: str | Path, *, profiles_dir: str | Path | None = None) -> AssetRegistry:
    """Read and validate an asset file: YAML (``.yaml``, ``.yml``) or CSV (``.csv``).

    Args:
        path: The file; messages name it as given.
        profiles_dir: The firmware profiles folder (``firmware_profiles``): when given, every
            asset's profile must exist there and cover its model and firmware, and a missing
            ``profile`` is resolved from them.

    Returns:
        The registry.

    Raises:
        RegistryError: the file cannot be read, has an unknown extension, or breaks a rule (every
            problem in one message); or the profiles folder is invalid.
    """
    source = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in {".yaml", ".yml", ".csv"}:
        raise RegistryError(
            source, [f"{source}: the file must end in .yaml, .yml or .csv. Got {suffix!r} instead."]
        )
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise RegistryError(source, [f"{source}: cannot read: {exc.strerror or exc}."]) from None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1]
        raise RegistryError(
            source, [f"{source}: not UTF-8 text (byte {exc.start}: {bad!r})."]
        ) from None
    library = _load_library(source, profiles_dir) if profiles_dir is not None else None
    # No log line here: the caller (the ingester, the scorer) logs what it loaded, at start.
    parse = parse_registry_csv if suffix == ".csv" else parse_registry_yaml
    return parse(text, source=source, library=library)


def _load_library(source: str, profiles_dir: str | Path) -> ProfileLibrary:
    try:
        return ProfileLibrary.load(profiles_dir)
    except ProfileError as exc:
        raise RegistryError(
            source, [f"{source}: the profiles folder is invalid:", str(exc)]
        ) from None


def parse_registry_yaml(
    text: str, *, source: str = "<assets.yaml>", library: ProfileLibrary | None = None
) -> AssetRegistry:
    """Validate the YAML text of an asset file: a mapping with one key, ``assets``, a list.

    Raises:
        RegistryError: every problem, one line each.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegistryError(source, [f"{source}: {where}{problem} (YAML syntax)."]) from None
    except ValueError as exc:
        # PyYAML's constructors raise plain ValueError for values such as the date 2021-13-01.
        raise RegistryError(source, [f"{source}: {exc} (YAML value)."]) from None
    except RecursionError:
        raise RegistryError(source, [f"{source}: nested too deeply (YAML)."]) from None
    if not isinstance(data, dict) or set(data) != {"assets"}:
        got = _short(sorted(map(str, data)) if isinstance(data, dict) else data)
        raise RegistryError(
            source,
            [f"{source}: the file must be a mapping with one key, 'assets'. Got {got} instead."],
        )
    entries = data["assets"]
    if not isinstance(entries, list):
        raise RegistryError(
            source, [f"{source}: assets must be a list. Got {_short(entries)} instead."]
        )
    records = []
    for index, entry in enumerate(entries):
        name = entry.get("asset_id") if isinstance(entry, dict) else None
        where = f"{source}: assets[{index}]{_record_name(name)}"
        records.append(_Record(where, f"assets[{index}]", entry))
    return _build(records, source, library)


def parse_registry_csv(
    text: str, *, source: str = "<assets.csv>", library: ProfileLibrary | None = None
) -> AssetRegistry:
    """Validate the CSV text of an asset file: a header row of `CSV_COLUMNS`, a row per asset.

    Empty cells are absent values. ``lat`` and ``lon`` make the location; ``consumables`` holds
    ``name=DATE HOURSh`` entries separated by ``;`` (either part may be left out), e.g.
    ``mechanical_seal=2025-03-01 12000h; bearing_grease=2026-01-10``.

    Raises:
        RegistryError: every problem, one line each.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise RegistryError(source, [f"{source}: the file is empty; it needs a header row."])
        header = [column.strip() for column in header]
        problems = _header_problems(header, source)
        if problems:
            raise RegistryError(source, problems)
        records = []
        line = reader.line_num
        for row in reader:
            where = f"{source}: line {line + 1}"
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            cells = {column: cell.strip() for column, cell in zip(header, row, strict=False)}
            where += _record_name(cells.get("asset_id"))
            if len(row) > len(header):
                records.append(
                    _Record(where, where, f"has {len(row)} cells, the header {len(header)}")
                )
                continue
            records.append(_Record(where, f"line {line}", _csv_record(cells)))
    except csv.Error as exc:
        raise RegistryError(
            source, [f"{source}: line {reader.line_num}: {exc} (CSV syntax)."]
        ) from None
    return _build(records, source, library)


def _header_problems(header: Sequence[str], source: str) -> list[str]:
    problems = []
    seen: set[str] = set()
    for column in header:
        if column not in CSV_COLUMNS:
            problems.append(
                f"{source}: line 1: column {column!r} is not a known column "
                f"({', '.join(CSV_COLUMNS)})."
            )
        elif column in seen:
            problems.append(f"{source}: line 1: column {column!r} appears twice.")
        seen.add(column)
    problems.extend(
        f"{source}: line 1: column {column!r} is required."
        for column in sorted(_REQUIRED_COLUMNS - seen)
    )
    return problems


def _csv_record(cells: Mapping[str, str]) -> dict[str, Any] | str:
    """One CSV row as the mapping the YAML form would have, or the problem (a string)."""
    record: dict[str, Any] = {
        k: v for k, v in cells.items() if v and k not in {"lat", "lon", "consumables"}
    }
    lat, lon = cells.get("lat", ""), cells.get("lon", "")
    if lat or lon:
        if not (lat and lon):
            return f"lat and lon go together. Got lat={lat!r}, lon={lon!r} instead"
        record["location"] = {"lat": lat, "lon": lon}
    if cells.get("consumables"):
        parsed = _parse_consumables(cells["consumables"])
        if isinstance(parsed, str):
            return parsed
        record["consumables"] = parsed
    return record


def _parse_consumables(cell: str) -> dict[str, dict[str, str]] | str:
    """``seal=2025-03-01 12000h; grease=2026-01-10`` as the YAML mapping, or the problem."""
    result: dict[str, dict[str, str]] = {}
    for raw_entry in cell.split(";"):
        entry = raw_entry.strip()
        if not entry:
            continue
        name, sep, rest = entry.partition("=")
        name = name.strip()
        shape = "must be NAME=DATE HOURSh entries separated by ';'"
        if not sep or not name or not rest.strip():
            return f"consumables {shape}. Got {entry!r} instead"
        if name in result:
            return f"consumables names {name!r} twice"
        state: dict[str, str] = {}
        for token in rest.split():
            if token.lower().endswith("h") and "replaced_at_hours" not in state:
                state["replaced_at_hours"] = token[:-1]
            elif "replaced_on" not in state and not token.lower().endswith("h"):
                state["replaced_on"] = token
            else:
                return f"consumables.{name} {shape}. Got {rest.strip()!r} instead"
        result[name] = state
    return result


# ---------------------------------------------------------------------------------------------
# Validation of records


class _Record:
    """One asset's raw mapping (or the problem that stopped it being one) and where it is."""

    __slots__ = ("data", "key", "where")

    def __init__(self, where: str, key: str, data: object) -> None:
        self.where = where
        self.key = key
        self.data = data


def _build(
    records: Sequence[_Record], source: str, library: ProfileLibrary | None
) -> AssetRegistry:
    problems: list[str] = []
    assets: list[Asset] = []
    first_use: dict[str, str] = {}
    tiers: dict[str, tuple[Tier, str]] = {}
    for record in records:
        if isinstance(record.data, str):
            problems.append(f"{record.where}: {record.data}.")
            continue
        if not isinstance(record.data, dict):
            problems.append(
                f"{record.where}: an asset must be a mapping of keys. "
                f"Got {_short(record.data)} instead."
            )
            continue
        asset, lines = _validate(record.where, dict(record.data), library)
        problems.extend(lines)
        if asset is None:
            continue
        if asset.asset_id in first_use:
            problems.append(
                f"{record.where}: asset_id {asset.asset_id!r} is already used by "
                f"{first_use[asset.asset_id]}."
            )
            continue
        first_use[asset.asset_id] = record.key
        tier_by, first_key = tiers.setdefault(asset.customer, (asset.tier, record.key))
        if tier_by is not asset.tier:
            problems.append(
                f"{record.where}: tier {asset.tier.value!r} of customer {asset.customer!r} differs "
                f"from {tier_by.value!r} in {first_key}; a customer has one tier."
            )
            continue
        assets.append(asset)
    if problems:
        raise RegistryError(source, problems)
    return AssetRegistry(assets, source=source)


def _validate(
    where: str, data: dict[str, Any], library: ProfileLibrary | None
) -> tuple[Asset | None, list[str]]:
    problems: list[str] = []
    if "profile" not in data:
        resolved = _resolve_profile(data, library)
        if isinstance(resolved, str) and resolved.startswith("!"):
            problems.append(f"{where}: {resolved[1:]}.")
        elif resolved is not None:
            data["profile"] = resolved
    try:
        asset = Asset.model_validate(data)
    except ValidationError as exc:
        problems.extend(
            f"{where}: {_describe(error)}"
            for error in exc.errors(include_url=False)
            # A missing profile that could not be resolved is already reported.
            if not (problems and error["loc"] == ("profile",) and error["type"] == "missing")
        )
        return None, problems
    if problems:
        return None, problems
    if library is not None:
        problems.extend(f"{where}: {line}." for line in _profile_problems(asset, library))
    return (None if problems else asset), problems


def _resolve_profile(data: Mapping[str, Any], library: ProfileLibrary | None) -> str | None:
    """The profile id for a record without one; ``!problem`` when it cannot be found."""
    model, firmware = data.get("model"), data.get("firmware")
    if library is None:
        return (
            "!profile is required (or pass a profiles folder to resolve it from model and firmware)"
        )
    if not isinstance(model, str) or not isinstance(firmware, str):
        return None  # the model reports the bad model or firmware itself
    try:
        return library.find(model=model, firmware=firmware).profile_id
    except ProfileError as exc:
        return f"!profile is not given and {exc}".rstrip(".")


def _profile_problems(asset: Asset, library: ProfileLibrary) -> list[str]:
    try:
        profile = library.get(asset.profile)
    except ProfileError:
        known = ", ".join(sorted(p.profile_id for p in library))
        return [f"profile must name a firmware profile ({known}). Got {asset.profile!r} instead"]
    problems = []
    if not profile.matches(model=asset.model, firmware=asset.firmware):
        problems.append(
            f"model {asset.model!r} firmware {asset.firmware!r} is not covered by profile "
            f"{asset.profile!r} (model {profile.model!r}, firmware {profile.firmware!r})"
        )
    names = {consumable.name for consumable in profile.consumables}
    problems.extend(
        f"consumables.{name} is not a consumable of profile {asset.profile!r} "
        f"({', '.join(sorted(names)) or 'none'})"
        for name in asset.consumables
        if name not in names
    )
    return problems


_RULES: Final[dict[str, str]] = {
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date (YYYY-MM-DD), not a time",
    "enum": "must be one of {expected}",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "model_type": "must be a mapping",
    "dict_type": "must be a mapping",
}


def _describe(error: Any) -> str:  # noqa: ANN401 - pydantic's ErrorDetails
    """One pydantic error as the tail of a problem line: key, rule and value."""
    loc = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
    kind: str = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "value_error":
        rule = str(error["msg"]).removeprefix("Value error, ")
        return f"{loc} {rule}." if loc else f"{rule}."
    rule = _RULES.get(kind, str(error["msg"]).lower()).format(
        **{k: _number(v) for k, v in ctx.items()}
    )
    if kind == "string_type" and isinstance(error.get("input"), int | float):
        rule += " (quote it in YAML)"
    head = f"{loc} {rule}"
    if kind in {"missing", "extra_forbidden"}:
        return f"{head}."
    return f"{head}. Got {_short(error.get('input'))} instead."


def _number(value: object) -> object:
    """A bound as written in the model: 90, not 90.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


_REPR = reprlib.Repr()  # bounded: a file's YAML aliases can make a value exponentially large
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 60, 60, 5, 5


def _short(value: object) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - a log-friendly width


def _record_name(name: object) -> str:
    """`` (asset "pump-07")`` for a record's id, quoted safely: the file is untrusted text."""
    if not isinstance(name, str) or not name:
        return ""
    shown = f'"{name}"' if name.isprintable() and len(name) <= 64 else _short(name)  # noqa: PLR2004
    return f" (asset {shown})"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, int] = {}
    lines: dict[int, int] = {}
    for key_node, _ in node.value:
        lines[key_node.start_mark.index] = key_node.start_mark.line
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.index)
        except TypeError:
            continue  # an unhashable key: construct_mapping reports it
        if first != key_node.start_mark.index:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {lines[first] + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
