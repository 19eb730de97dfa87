"""The audit chain's head outside its database: the anchor and the witness catch a database (and a whole home)
rolled back to an older copy, which the chain and its head row, restored together, cannot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from hazardvision.data import audit_heads
from hazardvision.data.audit import UPGRADE_ACTOR, AuditLog
from hazardvision.data.audit_heads import (
    ANCHOR_FILE_VARIABLE,
    KEY_FILE_VARIABLE,
    WITNESS_FILE_VARIABLE,
    WITNESS_SYSLOG_VARIABLE,
)
from hazardvision.data.audit_records import AuditEntry, AuditHead


@pytest.fixture
def home(tmp_path, database_url) -> Path:
    return tmp_path / "home"


def append(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append("key:dock3", "scan", f"scan-{i}")


def roll_back(log: AuditLog, to: int, head: tuple[int, str, str]) -> None:
    """Make the database what an older copy of it held: the chain up to `to`, with the head row of then."""
    with log.database.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq > to))
        session.execute(update(AuditHead).values(count=head[0], head=head[1], mac=head[2]))


def saved_head(log: AuditLog) -> tuple[int, str, str]:
    head = log.chain.head()
    assert head is not None
    return head.count, head.head, head.mac


def test_audit_anchor_follows_each_commit_and_verifies(home):
    log = AuditLog.at(home)
    append(log, 3)
    anchor = json.loads((home / "audit" / "head.json").read_text())
    assert (anchor["count"], anchor["head"]) == (3, log.records()[-1].hash)
    assert log.verify() == []


def test_audit_anchor_skips_an_append_that_rolled_back(home):
    log = AuditLog.at(home)
    append(log, 1)
    with pytest.raises(RuntimeError), log.database.session():
        log.append("key:dock3", "scan", "lost")
        raise RuntimeError("the action failed")
    assert json.loads(log.anchor.path.read_text())["count"] == 1
    assert log.verify() == []


def test_audit_verify_catches_a_database_restored_from_an_older_copy(home):
    log = AuditLog.at(home)
    append(log, 3)
    then = saved_head(log)
    append(log, 2)
    roll_back(log, 3, then)
    problems = log.verify()
    assert len(problems) == 1
    assert "ends at record 3 but the audit anchor" in problems[0] and "knows record 5" in problems[0]


def test_audit_verify_catches_a_missing_or_forged_anchor(home):
    log = AuditLog.at(home)
    append(log, 2)
    data = json.loads(log.anchor.path.read_text())
    log.anchor.path.write_text(json.dumps(data | {"count": 1}))
    assert any("wrong MAC" in problem for problem in log.verify())
    log.anchor.path.unlink()
    assert any("anchor" in problem and "is missing" in problem for problem in log.verify())
    append(log, 1)  # the next append writes it again
    assert log.verify() == []


def test_audit_key_and_anchor_live_where_the_environment_says(home, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_FILE_VARIABLE, str(tmp_path / "vault" / "audit.key"))
    monkeypatch.setenv(ANCHOR_FILE_VARIABLE, str(tmp_path / "vault" / "head.json"))
    log = AuditLog.at(home)
    append(log, 2)
    assert sorted(path.name for path in (tmp_path / "vault").iterdir() if not path.name.startswith(".")) \
        == ["audit.key", "head.json"]
    assert not (home / "audit" / "anchor.key").exists() and not (home / "audit" / "head.json").exists()
    assert AuditLog.at(home).verify() == []


def test_audit_witness_catches_a_rollback_of_every_file_of_the_home(home, tmp_path, monkeypatch, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("a copy of the home's files is a copy of the database on SQLite only; the PostgreSQL case "
                    "restores the rows below")
    witness = tmp_path / "elsewhere" / "witness.jsonl"
    monkeypatch.setenv(WITNESS_FILE_VARIABLE, str(witness))
    log = AuditLog.at(home)
    database = Path(str(log.database.engine.url.database))  # the test's SQLite file may lie outside the home
    append(log, 3)
    log.database.engine.dispose()
    shutil.copytree(home, tmp_path / "copy")
    shutil.copy(database, tmp_path / "copy.sqlite")
    append(log, 2)
    log.database.engine.dispose()
    shutil.rmtree(home)
    shutil.copytree(tmp_path / "copy", home)  # database, key and anchor of then, together
    shutil.copy(tmp_path / "copy.sqlite", database)
    restored = AuditLog.at(home)
    assert restored.verify() == []
    problems = restored.verify(witness=witness)
    assert len(problems) == 1 and "witness" in problems[0] and "knows record 5" in problems[0]
    append(restored, 4)  # the chain grows past the witness again: another record 5
    problems = restored.verify(witness=witness)
    assert any("two different records 4" in problem for problem in problems)
    assert any("record 4 of the chain is not the one the audit witness" in problem for problem in problems)


def test_audit_witness_catches_restored_rows_and_anchor(home, tmp_path, monkeypatch):
    witness = tmp_path / "elsewhere" / "witness.jsonl"
    monkeypatch.setenv(WITNESS_FILE_VARIABLE, str(witness))
    log = AuditLog.at(home)
    append(log, 2)
    then, anchor = saved_head(log), log.anchor.path.read_bytes()
    append(log, 1)
    roll_back(log, 2, then)
    log.anchor.path.write_bytes(anchor)
    assert log.verify() == []
    assert [json.loads(line)["count"] for line in witness.read_text().splitlines()] == [1, 2, 3]
    problems = log.verify(witness=witness)
    assert len(problems) == 1 and "knows record 3" in problems[0]


def test_audit_witness_every_few_seconds_exports_only_a_moved_head(home, tmp_path, monkeypatch):
    witness = tmp_path / "witness.jsonl"
    monkeypatch.setenv(WITNESS_FILE_VARIABLE, str(witness))
    log = AuditLog(AuditLog.at(home).database, witness_each_append=False)
    append(log, 2)
    assert not witness.exists()
    assert log.export_head() is not None and log.export_head() is None
    assert [json.loads(line)["count"] for line in witness.read_text().splitlines()] == [2]
    assert log.verify(witness=witness) == []


def test_audit_witness_in_syslog_gets_each_head(home, monkeypatch):
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(audit_heads.syslog, "syslog", lambda priority, message: sent.append((priority, message)))
    monkeypatch.setenv(WITNESS_SYSLOG_VARIABLE, "true")
    log = AuditLog.at(home)
    append(log, 2)
    assert [message.split(" at=")[0] for _, message in sent] == [
        f"audit head count={r.seq} head={r.hash}" for r in log.records()]


def as_upgraded_from_before_anchors(log: AuditLog, *, keep_anchor: bool = False) -> None:
    """Make the home what an upgrade from a hazardvision without anchors leaves: a chain, no anchor file, and a head
    row never marked anchored (migration 19 adds the column empty). `keep_anchor`: a version that wrote anchors but
    did not mark the head row."""
    if not keep_anchor:
        log.anchor.path.unlink()
    with log.database.session() as session:
        session.execute(update(AuditHead).values(anchored_at=None))


def test_audit_anchor_of_a_chain_from_before_anchors_is_written_when_its_log_opens(home):
    log = AuditLog.at(home)
    append(log, 3)
    as_upgraded_from_before_anchors(log)
    assert any("is missing" in problem for problem in log.verify())  # opened before the upgrade
    upgraded = AuditLog.at(home)
    assert upgraded.verify() == []
    anchoring = upgraded.records()[-1]
    assert (anchoring.seq, anchoring.action, anchoring.actor) == (4, "audit.anchor", UPGRADE_ACTOR)
    assert (anchoring.details["count"], anchoring.details["head"]) == (3, upgraded.records()[2].hash)
    assert json.loads(upgraded.anchor.path.read_text())["count"] == 4
    assert AuditLog.at(home).count() == 4  # once: the next opening finds the chain anchored


def test_audit_anchor_deleted_after_it_existed_still_fails_verify(home):
    log = AuditLog.at(home)
    append(log, 2)
    log.anchor.path.unlink()
    reopened = AuditLog.at(home)
    assert any("anchor" in problem and "is missing" in problem for problem in reopened.verify())
    assert reopened.count() == 2 and not reopened.anchor.path.exists()


def test_audit_anchor_found_on_an_upgraded_home_is_marked_and_its_deletion_caught(home):
    log = AuditLog.at(home)
    append(log, 2)
    as_upgraded_from_before_anchors(log, keep_anchor=True)
    assert AuditLog.at(home).verify() == [] and log.count() == 2  # marked, nothing appended
    log.anchor.path.unlink()
    assert any("is missing" in problem for problem in AuditLog.at(home).verify())
