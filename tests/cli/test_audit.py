"""`hazardvision audit ...` as a user runs it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from hazardvision.cli import app, common
from hazardvision.data.audit import AuditLog
from hazardvision.data.audit_records import AuditEntry
from tests.cli.test_bank import plant_leftovers

runner = CliRunner(env={"COLUMNS": "200"})  # tables as wide as they need


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch):
    """Rich reads COLUMNS once, when the CLI's console is made (at import, under whatever terminal the test
    process had): give it the width the runner asks for."""
    monkeypatch.setattr(common.out, "width", 200)


def audit(*args: str):
    return runner.invoke(app, ["audit", *args])


@pytest.fixture
def home(tmp_path):
    log = AuditLog.at(tmp_path)
    log.append("key:dock3", "scan", "scan-1", input_sha256="ab" * 32, model_versions={"ppe": "v1"})
    log.append("cli:ann", "key.create", "ml-bob", details={"role": "ml"})
    log.append("key:ann", "review.confirm", "scan-1", details={"finding": 0})
    log.append("cli:ann", "key.revoke", "ml-bob")
    return tmp_path


def test_audit_verify_intact_log(home):
    done = audit("verify", "--home", str(home))
    assert done.exit_code == 0, done.output
    assert "is intact: 4 records" in done.stdout
    report = json.loads(audit("verify", "--home", str(home), "--json").stdout)
    assert report["intact"] and report["records"] == 4 and report["problems"] == []


def test_audit_verify_tampered_log_exits_1_with_each_problem(home):
    with AuditLog.at(home).database.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(subject="scan-9"))
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
    done = audit("verify", "--home", str(home))
    assert done.exit_code == 1
    assert "record 1 does not match its hash: it was edited" in done.stderr
    assert "its tail was cut (record 4 is missing)" in done.stderr
    report = json.loads(audit("verify", "--home", str(home), "--json").stdout)
    assert not report["intact"] and len(report["problems"]) == 2


def test_audit_verify_of_a_bank_without_records(tmp_path):
    AuditLog.at(tmp_path).count()  # opens (so creates) the bank
    done = audit("verify", "--home", str(tmp_path))
    assert done.exit_code == 0 and "intact: 0 records" in done.stdout


@pytest.mark.parametrize("folder", ["TYPO", "empty"])
def test_audit_verify_of_a_missing_home_exits_2_and_creates_nothing(tmp_path, folder):
    home = tmp_path / folder
    if folder == "empty":
        home.mkdir()
    done = audit("verify", "--home", str(home))
    assert done.exit_code == 2
    assert "intact" not in done.stdout
    assert ("the folder does not exist" if folder == "TYPO" else "holds no bank") in done.stderr
    assert not home.exists() if folder == "TYPO" else list(home.iterdir()) == []


def test_audit_verify_reports_leftover_temporary_files(home):
    leftovers, _ = plant_leftovers(home)
    done = audit("verify", "--home", str(home))
    assert done.exit_code == 0, done.output
    assert "is intact: 4 records" in done.stdout and "6 leftover temporary file(s)" in done.stderr
    report = json.loads(audit("verify", "--home", str(home), "--json").stdout)
    assert report["intact"] and sorted(report["leftovers"]) == sorted(map(str, leftovers))


def test_audit_list_filters_and_limits(home):
    listed = json.loads(audit("list", "--home", str(home), "--json").stdout)
    assert [r["seq"] for r in listed] == [1, 2, 3, 4]
    assert listed[0]["model_versions"] == {"ppe": "v1"} and listed[0]["input_sha256"] == "ab" * 32
    keys = json.loads(audit("list", "--home", str(home), "--action", "key", "--limit", "1", "--json").stdout)
    assert [(r["seq"], r["action"]) for r in keys] == [(4, "key.revoke")]
    table = audit("list", "--home", str(home))
    assert table.exit_code == 0 and "review.confirm" in table.stdout and "ppe v1" in table.stdout


def test_audit_list_of_a_damaged_log_is_one_clear_line(home):
    with AuditLog.at(home).database.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(seq=-2))
    done = audit("list", "--home", str(home))
    assert done.exit_code == 2
    assert "not an audit record" in done.stderr and "audit verify" in done.stderr and "Traceback" not in done.output


def test_audit_adopt_copies_a_file_log_of_an_older_home(tmp_path):
    from tests.data.test_audit import write_file_log

    write_file_log(tmp_path, 3)
    assert audit("verify", "--home", str(tmp_path)).exit_code == 1  # not adopted yet: verify says so
    done = audit("adopt", "--home", str(tmp_path))
    assert done.exit_code == 0 and "adopted 3 records" in done.stdout
    assert "is intact: 3 records" in audit("verify", "--home", str(tmp_path)).stdout
    assert "nothing to adopt" in audit("adopt", "--home", str(tmp_path)).stdout


def test_audit_verify_against_a_witness_catches_a_restored_home(tmp_path, monkeypatch):
    witness = tmp_path / "elsewhere" / "witness.jsonl"
    monkeypatch.setenv("HAZARDVISION_AUDIT_WITNESS_FILE", str(witness))
    home = tmp_path / "home"
    log = AuditLog.at(home)
    log.append("cli:ann", "key.create", "ml-bob")
    log.database.engine.dispose()  # the database whole in its file, as a backup copies it
    older = (home / "bank.sqlite3").read_bytes(), (home / "audit" / "head.json").read_bytes()
    log.append("cli:ann", "key.create", "admin-eve")
    log.database.engine.dispose()
    assert audit("verify", "--home", str(home), "--witness", str(witness)).exit_code == 0
    (home / "bank.sqlite3").write_bytes(older[0])
    (home / "audit" / "head.json").write_bytes(older[1])
    assert audit("verify", "--home", str(home)).exit_code == 0  # the home agrees with itself
    done = audit("verify", "--home", str(home), "--witness", str(witness), "--json")
    report = json.loads(done.stdout)
    assert done.exit_code == 1 and not report["intact"]
    assert report["problems"] == [report["problems"][0]] and "knows record 2" in report["problems"][0]


def test_audit_verify_of_a_missing_witness_exits_2(home, tmp_path):
    done = audit("verify", "--home", str(home), "--witness", str(tmp_path / "none.jsonl"))
    assert done.exit_code == 2 and "no witness file" in done.output


def test_audit_key_and_anchor_files_from_the_environment(tmp_path, monkeypatch):
    vault = tmp_path / "vault"
    monkeypatch.setenv("HAZARDVISION_AUDIT_KEY_FILE", str(vault / "audit.key"))
    monkeypatch.setenv("HAZARDVISION_AUDIT_ANCHOR_FILE", str(vault / "head.json"))
    home = tmp_path / "home"
    assert runner.invoke(app, ["keys", "create", "--role", "ml", "--name", "ml-bob", "--home", str(home)]).exit_code \
        == 0
    assert (vault / "audit.key").is_file() and json.loads((vault / "head.json").read_text())["count"] == 1
    assert not (home / "audit" / "anchor.key").exists()
    assert audit("verify", "--home", str(home)).exit_code == 0
    monkeypatch.delenv("HAZARDVISION_AUDIT_KEY_FILE")
    done = audit("verify", "--home", str(home))
    assert done.exit_code == 1 and "audit key" in done.output and "missing" in done.output


def test_audit_verify_right_after_an_upgrade_from_before_anchors_passes(home):
    from tests.data.test_audit_heads import as_upgraded_from_before_anchors

    as_upgraded_from_before_anchors(AuditLog.at(home))
    done = audit("verify", "--home", str(home))
    assert done.exit_code == 0, done.output
    assert "is intact: 5 records" in done.stdout  # the fourth, and the one that anchored the chain
    assert AuditLog.at(home).records()[-1].action == "audit.anchor"
