"""NASA C-MAPSS turbofan run-to-failure files, read as named signals per engine and cycle.

The files (`train_FD00x.txt`, `test_FD00x.txt`) are space-separated with no header: unit number,
cycle, three operational settings and 21 sensors (Saxena et al., PHM 2008). Columns are named here
once, with units, so that the demo, the simulator and the models speak of the same signals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SETTINGS = ("altitude_kft", "mach", "throttle_resolver_angle")
"""Operational settings 1-3 (FD001 runs at one condition; the names follow the NASA readme)."""

SENSORS = (
    "t2_r",
    "t24_r",
    "t30_r",
    "t50_r",
    "p2_psia",
    "p15_psia",
    "p30_psia",
    "nf_rpm",
    "nc_rpm",
    "epr",
    "ps30_psia",
    "phi_pps_psi",
    "nrf_rpm",
    "nrc_rpm",
    "bpr",
    "far_b",
    "ht_bleed",
    "nf_dmd_rpm",
    "pcnfr_dmd_rpm",
    "w31_lbm_s",
    "w32_lbm_s",
)
"""Sensors 1-21: temperatures in degrees Rankine, pressures psia, speeds rpm, flows lbm/s."""

_COLUMNS = 2 + len(SETTINGS) + len(SENSORS)


@dataclass(frozen=True, slots=True)
class Cycle:
    """One engine's readings at one operating cycle."""

    unit: int
    cycle: int
    values: dict[str, float]


def read_cycles(path: Path) -> Iterator[Cycle]:
    """Yield every row of a C-MAPSS file as a `Cycle`, in file order.

    Raises:
        ValueError: A row does not have 26 numeric columns (names the file and line).
    """
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != _COLUMNS:
                msg = f"{path}:{lineno}: expected {_COLUMNS} columns, got {len(cols)}"
                raise ValueError(msg)
            try:
                numbers = [float(c) for c in cols]
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
            names = SETTINGS + SENSORS
            yield Cycle(
                int(numbers[0]), int(numbers[1]), dict(zip(names, numbers[2:], strict=True))
            )
