"""Each package exposes exactly its `__all__` (httpx's `test_all_imports_are_exported`)."""

import importlib
import types

import pytest

PACKAGES = [
    "prognos_contract",
    "edge_agent",
    "edge_agent.sources",
    "cloud",
    "cloud.alerting",
    "cloud.api",
    "cloud.registry",
    "cloud.scoring",
    "cloud.sim",
    "cloud.store",
    "cloud.workorders",
    "cloud.ingest",
    "models",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_imports_are_exported(name: str) -> None:
    """Every public name of a package is in its sorted `__all__`, and nothing else is."""
    module = importlib.import_module(name)
    included_private_members = {"__version__"}
    # Importing `a.b` binds `b` on `a`: a subpackage is the tree's shape, not an export.
    public = [
        member
        for member, value in vars(module).items()
        if (not member.startswith("_") or member in included_private_members)
        and not (isinstance(value, types.ModuleType) and value.__name__ == f"{name}.{member}")
    ]
    assert module.__all__ == sorted(public, key=str.casefold)
