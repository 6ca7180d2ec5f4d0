"""The numpydoc Examples of the RUL, feature and registry modules run and hold (STYLE.md 14)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "models._cmapss",
    "models._conditions",
    "models._features",
    "models._registry",
    "models._rul",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_in_docstrings_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
