"""Each package exposes exactly its `__all__` (httpx's `test_all_imports_are_exported`)."""

import importlib

import pytest

PACKAGES = ["prognos_contract", "edge_agent", "cloud", "cloud.store", "models"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_imports_are_exported(name: str) -> None:
    """Every public name of a package is in its sorted `__all__`, and nothing else is."""
    module = importlib.import_module(name)
    included_private_members = {"__version__"}
    public = [
        member
        for member in vars(module)
        if not member.startswith("_") or member in included_private_members
    ]
    assert module.__all__ == sorted(public, key=str.casefold)
