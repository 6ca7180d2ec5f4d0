"""`prognos workorders list|show|retry|approve` on a store file."""

import datetime as dt
import json
from pathlib import Path

import pytest

from cloud._cli import main
from cloud.workorders import Admission, ServicePolicy, Store, WoState, build_from_rule

T0 = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)


class Asset:
    """A minimal asset record."""

    asset_id = "pump-07"
    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "aquaflo_cpv150_2.x"
    asset_class = "pump"
    team = "north"
    criticality = "high"
    warranty_end = None


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "d.db"
    store = Store(path)
    wo = build_from_rule(asset=Asset(), profile=None, consumable="seal", window="w", reason="r",
                         due_by=T0 + dt.timedelta(days=9), created_at=T0,
                         policy=ServicePolicy())  # fmt: skip
    store.add(wo, Admission(WoState.PROPOSED, "suggest_mode"), now=T0)
    store.close()
    return path, wo.key


def test_list_show_and_approve(db: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """A proposed work order is listed, shown with its history, approved into the outbox."""
    path, key = db
    assert main(["workorders", "--db", str(path), "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["key"], row["state"], row["priority"]) == (key, "proposed", "P4")
    assert main(["workorders", "--db", str(path), "approve", key]) == 0
    assert capsys.readouterr().out.strip() == f"{key}: pending"
    assert main(["workorders", "--db", str(path), "show", key]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["event"] for e in shown["events"]] == ["approve"]
    assert main(["workorders", "--db", str(path), "list"]) == 0
    assert "outbox_queued=1" in capsys.readouterr().out


def test_retry_of_a_work_order_that_is_not_failed_names_the_state(
    db: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Retry is only for dead letters; the message says what the state allows."""
    path, key = db
    assert main(["workorders", "--db", str(path), "retry", key]) == 1
    err = capsys.readouterr().err
    assert "'retry' is not allowed in state 'proposed'" in err
    assert "approve" in err
    assert main(["workorders", "--db", str(path), "show", "wo-nope"]) == 1


def test_deliver_with_a_bad_policy_stops_with_the_file_and_key(
    db: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A policy error is one message naming the file, the key and the value; exit 2."""
    path, _ = db
    bad = tmp_path / "p.yaml"
    bad.write_text("delivery: {max_attempts: 0}\n")
    monkeypatch.setenv("PROGNOS_WEBHOOK_SECRET", "whsec_dGVzdA==")
    argv = [
        "workorders",
        "--db",
        str(path),
        "deliver",
        "--adapter",
        "webhook",
        "--url",
        "http://127.0.0.1:9",
        "--policy",
        str(bad),
        "--once",
    ]
    assert main(argv) == 2
    assert "p.yaml: delivery.max_attempts" in capsys.readouterr().err
