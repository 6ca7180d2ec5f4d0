"""`prognos ingest`: help, configuration errors, and the dead-letter listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud._cli import main as prognos
from cloud.ingest import DeadLetter, Reject, StateStore


def test_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`prognos ingest --help` exits 0 and names the flags and the guarantee."""
    with pytest.raises(SystemExit) as info:
        prognos(["ingest", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "acknowledgement only after InfluxDB accepted" in out
    assert "--client-id" in out


def test_a_bad_config_exits_2_naming_file_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration error stops startup with one line per problem (exit 2)."""
    path = tmp_path / "ingest.yaml"
    path.write_text("batch:\n  max_wait_ms: -5\n")
    assert prognos(["ingest", "--config", str(path), "--log-format", "json"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: batch.max_wait_ms" in err
    assert "Got -5 instead." in err


def test_deadletters_are_listed_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deadletters` prints each as its JSON, newest first, or the rejects per reason."""
    store = StateStore(tmp_path / "ingest.db")
    for seq, reason in ((1, "too_long"), (2, "non_finite")):
        letter = DeadLetter(
            ts_ms=seq, topic="t", gateway="gw", seq=seq, whole=True,
            rejects=(Reject(reason, "", "why"),), payload=b"{}", payload_bytes=2,
        )  # fmt: skip
        store.commit_flush(letters=[letter], seen=[], forget=[])
    store.close()
    assert prognos(["ingest", "deadletters", "--state-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [2, 1]
    assert prognos(["ingest", "deadletters", "--state-dir", str(tmp_path), "--count"]) == 0
    assert capsys.readouterr().out.splitlines() == ["non_finite\t1", "too_long\t1", "total\t2"]
    missing = tmp_path / "nowhere"
    assert prognos(["ingest", "deadletters", "--state-dir", str(missing)]) == 2
