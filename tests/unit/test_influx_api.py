"""The public face of cloud.store: its exception tree, and what importing it costs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import cloud.store
from cloud.store import (
    DatabaseNotFound,
    InfluxAuthError,
    InfluxConnectError,
    InfluxError,
    InfluxRequestError,
    InfluxServerError,
    InfluxTimeout,
    LineProtocolError,
    PartialWriteError,
)


@pytest.mark.parametrize(
    ("error", "parent"),
    [
        (InfluxConnectError, InfluxError),
        (InfluxTimeout, InfluxError),
        (InfluxAuthError, InfluxError),
        (InfluxRequestError, InfluxError),
        (PartialWriteError, InfluxRequestError),
        (DatabaseNotFound, InfluxRequestError),
        (InfluxServerError, InfluxError),
        (InfluxError, Exception),
        (LineProtocolError, ValueError),
    ],
)
def test_exception_tree(error: type[Exception], parent: type[Exception]) -> None:
    """Each exception sits under the parent the module docstring draws, and only that one."""
    assert error.__bases__ == (parent,)


def test_the_tree_is_drawn_in_the_errors_module_docstring() -> None:
    """Every exception class has its own line in the tree drawn in `_errors`."""
    doc = sys.modules["cloud.store._errors"].__doc__ or ""
    for name in cloud.store.__all__:
        obj = getattr(cloud.store, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert re.search(rf"^[│├└─ ]*{name} ", doc, re.MULTILINE), name


def test_importing_the_store_does_not_import_pandas() -> None:
    """The ingester imports cloud.store without paying for pandas; query_df imports it lazily."""
    code = "import sys, cloud.store; assert 'pandas' not in sys.modules, 'pandas was imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
