"""The asset registry: a record per asset (site, customer, tier, model and firmware profile, ...).

Loaded from YAML or CSV (docs/registry.md), validated once at load, then used read-only by the
ingester (readings from unknown assets are kept and flagged), the scorer, alerts, work orders and
the API::

    from cloud.registry import load_registry

    registry = load_registry("config/assets.yaml", profiles_dir="firmware_profiles")
    asset = registry.get("pump-07")          # None for an unknown asset
    if asset is not None and asset.tier is Tier.VIP: ...

`prognos assets check FILE [--profiles DIR]` validates a file and prints a summary.
"""

from cloud.registry._model import Asset, ConsumableState, Criticality, Location, Tier
from cloud.registry._registry import (
    CSV_COLUMNS,
    AssetRegistry,
    RegistryError,
    load_registry,
    parse_registry_csv,
    parse_registry_yaml,
)

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "Asset",
    "AssetRegistry",
    "ConsumableState",
    "Criticality",
    "CSV_COLUMNS",
    "load_registry",
    "Location",
    "parse_registry_csv",
    "parse_registry_yaml",
    "RegistryError",
    "Tier",
]
