"""The audit log in the database: a chain that verify checks, that catches tampering, that commits with its
action, and that concurrent writers (threads and processes, on SQLite and PostgreSQL) keep whole."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import secrets
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from hazardvision.data.audit import GENESIS, AuditLog, canonical_json, record_hash, record_mac
from hazardvision.data.audit_records import AuditEntry, AuditHead
from hazardvision.errors import AuditError


@pytest.fixture
def home(tmp_path, database_url) -> Path:
    """A home whose database is each of the test databases (HAZARDVISION_DATABASE_URL is set)."""
    return tmp_path / "home"


def filled(home: Path, n: int = 5) -> AuditLog:
    """A log of `n` scan records."""
    log = AuditLog.at(home)
    for i in range(1, n + 1):
        log.append("key:pipeline-dock3", "scan", f"scan-{i}", input_sha256=hashlib.sha256(bytes([i])).hexdigest(),
                   model_versions={"ppe": "v1"}, details={"findings": i})
    return log


def tamper(log: AuditLog, statement) -> None:
    """Change the stored chain directly, as someone with access to the database would."""
    with log.database.session() as session:
        session.execute(statement)


def forge(records: list[dict], key: bytes) -> list[dict]:
    """Re-chain records with correct SHA-256 hashes, MAC'ed with `key`."""
    prev, forged = GENESIS, []
    for seq, record in enumerate(records, 1):
        body = {k: v for k, v in record.items() if k not in ("hash", "mac")} | {"seq": seq, "prev": prev}
        prev = record_hash(body)
        forged.append(body | {"hash": prev, "mac": record_mac(key, prev)})
    return forged


def head_values(records: list[dict], key: bytes) -> dict:
    count, head = len(records), records[-1]["hash"]
    return {"count": count, "head": head, "mac": record_mac(key, canonical_json({"count": count, "head": head}))}


def test_audit_append_chains_records_and_verifies_intact(home):
    log = filled(home)
    records = log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev == GENESIS
    assert all(later.prev == earlier.hash for earlier, later in itertools.pairwise(records))
    assert records[2].subject == "scan-3" and records[2].model_versions == {"ppe": "v1"}
    assert records[2].details == {"findings": 3} and records[2].at.endswith("+00:00")
    assert log.verify() == [] and log.count() == 5
    assert AuditLog.at(home).verify() == []  # a fresh instance reads the same chain and key
    assert not (home / "audit" / "audit.jsonl").exists()  # nothing is kept beside the database


def test_audit_key_is_created_private_on_first_append(home):
    log = AuditLog.at(home)
    assert not log.key_path.exists()
    log.append("cli:ann", "model.activate", "ppe", model_versions={"ppe": "v2"})
    assert log.key_path == home / "audit" / "anchor.key"
    assert stat.S_IMODE(log.key_path.stat().st_mode) == 0o600
    assert log.count() == 1


def test_audit_log_of_a_new_home_is_empty_and_intact(home):
    log = AuditLog.at(home)
    assert (log.records(), log.verify(), log.count()) == ([], [], 0)
    assert not log.key_path.exists()  # reading creates no key


def test_audit_records_filter_by_action_and_keep_the_last(home):
    log = AuditLog.at(home)
    for action in ("scan", "key.create", "scan", "key.revoke", "keys", "scan"):
        log.append("cli:ann", action)
    assert [r.seq for r in log.records(action="key")] == [2, 4]
    assert [r.seq for r in log.records(action="scan", last=2)] == [3, 6]
    assert [r.seq for r in log.records(last=1)] == [6]


def test_audit_record_commits_with_its_action_or_not_at_all(home):
    log = filled(home, 2)
    with pytest.raises(RuntimeError), log.database.session():
        log.append("cli:ann", "scan", "scan-lost")  # joins the open transaction ...
        raise RuntimeError("the action failed after its record was written")  # ... which rolls back
    assert log.count() == 2 and log.verify() == []
    with log.database.session():
        log.append("cli:ann", "scan", "scan-kept")
    assert [r.subject for r in log.records()][-1] == "scan-kept" and log.count() == 3


def test_audit_verify_catches_an_edited_record(home):
    log = filled(home)
    tamper(log, update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone-else"))
    assert log.verify() == ["record 3 does not match its hash: it was edited"]


def test_audit_verify_catches_deleted_records(home):
    log = filled(home)
    tamper(log, delete(AuditEntry).where(AuditEntry.seq == 3))
    assert log.verify() == ["record 4 follows record 2: record 3 was deleted"]
    tamper(log, delete(AuditEntry).where(AuditEntry.seq.in_([2, 4])))
    assert log.verify() == ["record 5 follows record 1: records 2..4 were deleted"]


def test_audit_verify_catches_a_cut_tail(home):
    log = filled(home)
    tamper(log, delete(AuditEntry).where(AuditEntry.seq > 3))
    assert log.verify() == ["the chain ends at record 3 but its head at record 5: its tail was cut "
                            "(records 4..5 are missing)"]


def test_audit_verify_catches_a_chain_and_head_rewritten_without_the_key(home):
    log = filled(home)
    records = [r.model_dump() for r in log.records()]
    for record in records:
        record["actor"] = "someone-else"
    attacker_key = secrets.token_bytes(32)
    forged = forge(records, attacker_key)
    tamper(log, delete(AuditEntry))
    with log.database.session() as session:
        session.add_all(AuditEntry(**record) for record in forged)
        session.execute(update(AuditHead).values(**head_values(forged, attacker_key)))
    assert all(record_hash(r) == r["hash"] for r in forged)  # every SHA-256 checks out
    problems = log.verify()
    assert problems[:5] == [f"record {i} has a wrong MAC: it was rewritten without the audit key" for i in range(1, 6)]
    assert problems[5].startswith("the head of the audit chain") and "wrong MAC" in problems[5]
    with pytest.raises(AuditError, match="wrong MAC"):
        AuditLog.at(home).append("cli:ann", "scan")
    assert log.count() == 5


def test_audit_without_its_key_refuses_to_append_and_says_so(home):
    log = filled(home, 3)
    log.key_path.unlink()
    with pytest.raises(AuditError, match=r"audit key .* is missing"):
        AuditLog.at(home).append("cli:ann", "scan")
    assert log.count() == 3
    assert AuditLog.at(home).verify() == [f"the audit key {log.key_path} is missing: record MACs cannot be "
                                          "checked; restore the key from its backup"]


def test_audit_verify_reports_a_key_others_can_read(home):
    log = filled(home, 1)
    log.key_path.chmod(0o644)
    assert log.verify() == [f"the audit key {log.key_path} can be read by other users (mode 644); "
                            f"`chmod 600 {log.key_path}`"]


def test_audit_key_kept_apart_from_the_home(home, tmp_path):
    key_file = tmp_path / "secrets" / "audit.key"
    log = AuditLog.at(home, key_file=key_file)
    log.append("cli:ann", "scan")
    assert key_file.is_file() and not (home / "audit" / "anchor.key").exists()
    assert AuditLog.at(home, key_file=key_file).verify() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": ""}, "needs an actor"),
        ({"input_sha256": "AB" * 32}, "64 lowercase hex digits"),
        ({"details": {"blob": "x" * 20000}}, "over the 16384 byte limit"),
        ({"details": {"ratio": float("nan")}}, "plain JSON"),
    ],
)
def test_audit_append_rejects_bad_records(tmp_path, kwargs, message):
    log = AuditLog.at(tmp_path)
    with pytest.raises(AuditError, match=message):
        log.append(**({"actor": "cli:ann", "action": "scan"} | kwargs))
    assert log.count() == 0


def test_audit_appends_from_threads_make_one_chain(home):
    shared = AuditLog.at(home)

    def work(name: str) -> None:
        own = AuditLog.at(home)  # separate instances meet at the database's lock on the head
        for i in range(10):
            (shared if i % 2 else own).append(name, "scan", f"{name}-{i}")

    threads = [threading.Thread(target=work, args=(f"thread-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = shared.records()
    assert [r.seq for r in records] == list(range(1, 41))
    assert len({r.subject for r in records}) == 40
    assert shared.verify() == []


def append_many(home: str, url: str, actor: str, count: int, start: threading.Barrier) -> None:
    """Runs in each process; all start appending together."""
    log = AuditLog.at(Path(home), url=url)
    start.wait(timeout=120)
    for i in range(count):
        log.append(actor, "scan", f"{actor}-{i}")


def test_audit_appends_from_processes_make_one_chain(home, database_url):
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold locks in other threads
    start = context.Barrier(3)
    workers = [context.Process(target=append_many, args=(str(home), database_url, f"process-{n}", 20, start))
               for n in range(2)]
    for worker in workers:
        worker.start()
    append_many(str(home), database_url, "parent", 20, start)
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    log = AuditLog.at(home)
    records = log.records()
    assert [r.seq for r in records] == list(range(1, 61))
    assert {r.actor for r in records} == {"process-0", "process-1", "parent"}
    assert log.verify() == []


def write_file_log(home: Path, count: int) -> tuple[bytes, list[dict]]:
    """A home's audit log as the file format before the database kept it: lines, anchor and key."""
    folder = home / "audit"
    folder.mkdir(parents=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(folder / "anchor.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(descriptor, key.hex().encode() + b"\n")
    os.close(descriptor)
    records = forge([{"at": "2026-11-01T08:00:00.000000+00:00", "actor": "cli:ann", "action": "scan",
                      "subject": f"scan-{i}", "input_sha256": None, "model_versions": None, "details": {"n": i}}
                     for i in range(count)], key)
    text = "".join(json.dumps(record) + "\n" for record in records)
    (folder / "audit.jsonl").write_text(text)
    body = {"count": count, "head": records[-1]["hash"], "size": len(text.encode())}
    (folder / "anchor.json").write_text(json.dumps(body | {"mac": record_mac(key, canonical_json(body))}))
    return key, records


def test_audit_adopt_copies_an_intact_file_log_and_the_chain_goes_on(home):
    _, records = write_file_log(home, 4)
    log = AuditLog.at(home)
    assert "hazardvision audit adopt" in log.verify()[0]
    with pytest.raises(AuditError, match="audit adopt"):  # no second chain beside the file's
        log.append("cli:ann", "scan")
    assert log.adopt() == 4
    assert [r.hash for r in log.records()] == [r["hash"] for r in records]  # copied verbatim
    assert log.append("cli:ann", "scan", "after").seq == 5
    assert log.verify() == [] and (home / "audit" / "audit.jsonl.adopted").is_file()
    assert log.adopt() == 0  # nothing left to adopt


def test_audit_adopt_refuses_a_tampered_file_log_and_copies_nothing(home):
    write_file_log(home, 3)
    path = home / "audit" / "audit.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # record 2 deleted
    log = AuditLog.at(home)
    with pytest.raises(AuditError, match=r"not intact.*record 2 was deleted"):
        log.adopt()
    assert log.count() == 0 and path.is_file()


def test_audit_adopt_after_a_crash_between_copy_and_rename_finishes_the_rename(home):
    write_file_log(home, 3)
    log = AuditLog.at(home)
    assert log.adopt() == 3
    adopted = home / "audit" / "audit.jsonl.adopted"
    adopted.rename(home / "audit" / "audit.jsonl")  # as if the process died before renaming the file
    assert log.adopt() == 0 and adopted.is_file() and not (home / "audit" / "audit.jsonl").exists()
    assert log.append("cli:ann", "scan").seq == 4 and log.verify() == []
