"""Firmware profiles: one YAML file per device model and firmware, validated once at load.

Theory of operation
-------------------
A profile is data (STYLE.md 5): the register map of a device model (which table, address, type,
byte order, scale, unit, sentinels, interval and deadband of every signal) plus what the cloud needs
to maintain the model (consumables, failure modes, spare parts). `load_profile` reads one file into
a frozen, typed `Profile`; `ProfileLibrary.load` reads a folder of them and refuses two profiles a
device could match both.

Loading never does I/O beyond reading the file, and reports every error in one `ProfileError`
whose lines have the shape of STYLE.md 4::

    firmware_profiles/acme_pump_2.1.yaml: signals[3].byte_order must be one of
    'ABCD','BADC','CDAB','DCBA'. Got 'ABDC' instead. (line 42)

Aliases are canonicalised here, once: byte orders (``big``, ``MSW-LE``, ``GHEFCDAB``), data types
(IEC 61131-3 ``REAL``, ``DINT``, ...) and table names (``holding_registers``), so that nothing after
loading ever sees an alias.

A device's profile is found by model and firmware version: either named in the device
configuration (`ProfileLibrary.find`), or read from the device's identification registers
(`ProfileLibrary.identification_requests`, then the pure `ProfileLibrary.select`). A profile's
``firmware`` is an exact version (``"2.4"``) or a specifier (``">=2.1,<3"``, ``"~=5.1"``,
``"2.*"``, ``"*"``), compared by the tiny `VersionSpec` (numeric components only).

Rules:
1. Every key of a profile is known (``extra="forbid"``); a typo is an error, never ignored.
2. A choice is a `Literal`, never a boolean (``access: read_write``, not ``writable: true``).
3. ``defaults.byte_order`` and ``defaults.interval_s`` fill a signal that does not set its own, so
   a loaded `Signal` always carries its effective values. A ``string`` ignores the default byte
   order (text byte order is independent of the device's number format) and defaults to ``ABCD``.
4. Two profiles of one model whose firmware specifiers overlap are an error naming both files.

Modules (private: import from `edge_agent._profile`; each imports only those above it):

- `_versions`: firmware versions and specifiers (`VersionSpec`, `parse_version`).
- `_fields`: field types, alias canonicalisation and the rule validators (`_RuleError`).
- `_model`: the frozen pydantic models (`Profile`, `Signal`, ...) and their cross-field rules.
- `_errors`: `ProfileError`; pydantic and YAML errors as STYLE.md 4 lines; the strict YAML loader.
- `_schema`: the JSON Schema of a profile file (``firmware_profiles/profile.schema.json``).
- `_library`: `parse_profile`, `load_profile`, `ProfileLibrary` and identification (`Selection`).
"""

from edge_agent._profile._errors import ProfileError
from edge_agent._profile._library import ProfileLibrary, load_profile, parse_profile
from edge_agent._profile._model import Profile, RequestLimits, Signal
from edge_agent._profile._schema import profile_json_schema_text
from edge_agent._profile._versions import VersionSpec, parse_version

__all__ = [
    "Profile",
    "ProfileError",
    "ProfileLibrary",
    "RequestLimits",
    "Signal",
    "VersionSpec",
    "load_profile",
    "parse_profile",
    "parse_version",
    "profile_json_schema_text",
]
