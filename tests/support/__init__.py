"""Test support: a fake Modbus device, a test-only poll plan, pty pairs, async helpers.

Import as `from support import FakeModbusDevice` (pytest puts `tests/` on `sys.path` through
`tests/conftest.py`).
"""

from support.harness import ReadingLog, cancel, run_async
from support.modbus_device import FakeModbusDevice, GarbleMode, SeenRequest, UnitData
from support.plans import WordPlan, signal_name
from support.ptys import socat_pty_pair

__all__ = [
    "FakeModbusDevice",
    "GarbleMode",
    "ReadingLog",
    "SeenRequest",
    "UnitData",
    "WordPlan",
    "cancel",
    "run_async",
    "signal_name",
    "socat_pty_pair",
]
