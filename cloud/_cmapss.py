"""NASA C-MAPSS turbofan run-to-failure files, read as named signals per engine and cycle.

The files (`train_FD00x.txt`, `test_FD00x.txt`) are space-separated with no header: unit number,
cycle, three operational settings and 21 sensors (Saxena et al., PHM 2008). Columns are named
once, in `prognos_contract` (standard library only: importing them here does not load the
models' scikit-learn and pandas), so that the demo, the simulator, the models and the scorer speak
of the same signals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prognos_contract import CMAPSS_SENSORS as SENSORS
from prognos_contract import CMAPSS_SETTINGS as SETTINGS

__all__ = ["SENSORS", "SETTINGS", "Cycle", "read_cycles"]

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
