"""`prognos assets`: check an asset registry file and summarise it."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from cloud.registry._registry import AssetRegistry, RegistryError, load_registry


def build_parser() -> argparse.ArgumentParser:
    """The `prognos assets` parser."""
    parser = argparse.ArgumentParser(
        prog="prognos assets", description="The asset registry (docs/registry.md)."
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="validate an asset file (YAML or CSV) and print a summary",
        description="Validate an asset file; exit 0 when valid, 2 with one line per problem.",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="assets .yaml, .yml or .csv")
    check.add_argument(
        "--profiles",
        type=Path,
        metavar="DIR",
        help="firmware profiles folder: check each asset's profile, model, firmware, consumables",
    )
    return parser


def summary(registry: AssetRegistry) -> list[str]:
    """The lines `prognos assets check` prints for a valid registry."""
    lines = [f"{registry.source}: {len(registry)} assets, {len(registry.sites())} sites"]
    for title, counts in (
        ("sites", Counter(a.site for a in registry)),
        ("customers", Counter(f"{a.customer} ({a.tier.value})" for a in registry)),
        ("profiles", Counter(a.profile for a in registry)),
        ("classes", Counter(a.asset_class for a in registry)),
        ("teams", Counter(a.team for a in registry)),
        ("criticality", Counter(a.criticality.value for a in registry)),
    ):
        shown = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        lines.append(f"  {title:<12} {shown}")
    no_location = sorted(a.asset_id for a in registry if a.location is None)
    if no_location:
        lines.append(f"  {'no location':<12} {', '.join(no_location)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run `prognos assets`; returns the exit code (0 valid, 2 invalid)."""
    args = build_parser().parse_args(argv)
    try:
        registry = load_registry(args.file, profiles_dir=args.profiles)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(summary(registry)))
    if args.profiles is None:
        print("  (profiles not checked: pass --profiles firmware_profiles)")
    return 0
