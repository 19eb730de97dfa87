"""The audit log: a chain that verify checks, that catches tampering, and that concurrent writers keep whole."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import secrets
import stat
import threading
from pathlib import Path

import pytest

from hazardvision.audit import GENESIS, AuditLog, canonical_json, record_hash, record_mac
from hazardvision.errors import AuditError


def filled(home: Path, n: int = 5) -> AuditLog:
    """A log of `n` scan records."""
    log = AuditLog(home)
    for i in range(1, n + 1):
        log.append("key:pipeline-dock3", "scan", f"scan-{i}", input_sha256=hashlib.sha256(bytes([i])).hexdigest(),
                   model_versions={"ppe": "v1"}, details={"findings": i})
    return log


def lines(log: AuditLog) -> list[dict]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def write_lines(log: AuditLog, records: list[dict]) -> None:
    log.path.write_text("".join(json.dumps(r) + "\n" for r in records))


def forge(records: list[dict], key: bytes) -> list[dict]:
    """Re-chain records with correct SHA-256 hashes, MAC'ed with `key`."""
    prev, forged = GENESIS, []
    for seq, record in enumerate(records, 1):
        body = {k: v for k, v in record.items() if k not in ("hash", "mac")} | {"seq": seq, "prev": prev}
        prev = record_hash(body)
        forged.append(body | {"hash": prev, "mac": record_mac(key, prev)})
    return forged


def forge_anchor(log: AuditLog, records: list[dict], key: bytes) -> None:
    body = {"count": len(records), "head": records[-1]["hash"], "size": log.path.stat().st_size}
    log.anchor_path.write_text(json.dumps(body | {"mac": record_mac(key, canonical_json(body))}))


def test_audit_append_chains_records_and_verifies_intact(tmp_path):
    log = filled(tmp_path)
    records = log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev == GENESIS
    assert all(later.prev == earlier.hash for earlier, later in itertools.pairwise(records))
    assert records[2].subject == "scan-3" and records[2].model_versions == {"ppe": "v1"}
    assert records[2].details == {"findings": 3} and records[2].at.endswith("+00:00")
    assert log.verify() == [] and log.count() == 5
    assert AuditLog(tmp_path).verify() == []  # a fresh instance reads the same anchor and key


def test_audit_key_is_created_private_on_first_append(tmp_path):
    log = AuditLog(tmp_path)
    assert not log.key_path.exists()
    log.append("cli:ann", "model.activate", "ppe", model_versions={"ppe": "v2"})
    assert log.key_path == tmp_path / "audit" / "anchor.key"
    assert stat.S_IMODE(log.key_path.stat().st_mode) == 0o600
    assert json.loads(log.anchor_path.read_text())["count"] == 1


def test_audit_log_of_a_new_home_is_empty_and_intact(tmp_path):
    log = AuditLog(tmp_path)
    assert (log.records(), log.verify(), log.count()) == ([], [], 0)
    assert not (tmp_path / "audit").exists()  # reading creates nothing


def test_audit_records_filter_by_action_and_keep_the_last(tmp_path):
    log = AuditLog(tmp_path)
    for action in ("scan", "key.create", "scan", "key.revoke", "keys", "scan"):
        log.append("cli:ann", action)
    assert [r.seq for r in log.records(action="key")] == [2, 4]
    assert [r.seq for r in log.records(action="scan", last=2)] == [3, 6]
    assert [r.seq for r in log.records(last=1)] == [6]


def test_audit_verify_catches_an_edited_record(tmp_path):
    log = filled(tmp_path)
    records = lines(log)
    records[2]["actor"] = "someone-else"
    write_lines(log, records)
    assert log.verify() == ["record 3 (line 3) does not match its hash: it was edited"]


def test_audit_verify_catches_a_deleted_record(tmp_path):
    log = filled(tmp_path)
    records = lines(log)
    write_lines(log, records[:2] + records[3:])
    assert log.verify() == ["record 4 (line 3) follows record 2: record 3 was deleted"]
    write_lines(log, records[:1] + records[4:])
    assert log.verify() == ["record 5 (line 2) follows record 1: records 2..4 were deleted"]


def test_audit_verify_catches_a_deleted_record_relinked_without_the_key(tmp_path):
    log = filled(tmp_path)
    records = lines(log)
    del records[2]
    for seq, record in enumerate(records, 1):
        record["seq"] = seq
    records[2:] = forge(records, secrets.token_bytes(32))[2:]
    write_lines(log, records)
    problems = log.verify()
    assert "record 3 (line 3) has a wrong MAC: it was rewritten without the audit key" in problems
    assert any("tail was cut" in p for p in problems)


def test_audit_verify_catches_a_truncated_tail(tmp_path):
    log = filled(tmp_path)
    write_lines(log, lines(log)[:3])
    assert log.verify() == ["the log ends at record 3 but its anchor at record 5: its tail was cut "
                            "(records 4..5 are missing)"]


def test_audit_verify_catches_a_chain_rewritten_without_the_key(tmp_path):
    log = filled(tmp_path)
    records = lines(log)
    for record in records:
        record["actor"] = "someone-else"
    attacker_key = secrets.token_bytes(32)
    forged = forge(records, attacker_key)
    write_lines(log, forged)
    forge_anchor(log, forged, attacker_key)
    assert all(record_hash(r) == r["hash"] for r in forged)  # every SHA-256 checks out
    problems = log.verify()
    assert problems[0].startswith("the anchor") and "wrong MAC" in problems[0]
    assert problems[1:] == [f"record {i} (line {i}) has a wrong MAC: it was rewritten without the audit key"
                            for i in range(1, 6)]
    with pytest.raises(AuditError, match="wrong MAC"):
        log.append("cli:ann", "scan")


def test_audit_verify_catches_a_malformed_line(tmp_path):
    log = filled(tmp_path, 3)
    text = log.path.read_text().splitlines()
    text[1] = text[1][:-10]
    log.path.write_text("\n".join(text) + "\n")
    problems = log.verify()
    assert problems[0] == "line 2 is not a valid audit record"
    with pytest.raises(AuditError, match=r"line 2 of .* is not an audit record"):
        log.records()


def test_audit_crash_before_the_anchor_is_reported_then_reanchored(tmp_path):
    log = filled(tmp_path, 3)
    anchor = log.anchor_path.read_bytes()
    log.append("cli:ann", "scan", "scan-4")
    log.anchor_path.write_bytes(anchor)  # as if the process died between the log line and the anchor
    assert log.verify() == ["the anchor is 1 record behind the log (a crash during an append?); the next append "
                            "re-anchors it"]
    record = AuditLog(tmp_path).append("cli:ann", "scan", "scan-5")
    assert record.seq == 5 and log.verify() == []


def test_audit_crash_on_the_first_append_is_reanchored(tmp_path):
    log = filled(tmp_path, 1)
    log.anchor_path.unlink()
    assert "1 record behind" in log.verify()[0]
    assert log.append("cli:ann", "scan").seq == 2 and log.verify() == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("cut", "its tail was cut"),
        ("torn", "not one valid record"),
        ("extra", "not one valid record"),
        ("no-anchor", "not one valid record"),
        ("no-key", "audit key .* is missing"),
    ],
)
def test_audit_append_refuses_a_log_that_does_not_match_its_anchor(tmp_path, damage, message):
    log = filled(tmp_path, 3)
    records = lines(log)
    if damage == "cut":
        write_lines(log, records[:2])
    elif damage == "torn":
        with open(log.path, "a") as handle:
            handle.write('{"seq": 4, "at": ')
    elif damage == "extra":
        with open(log.path, "a") as handle:
            handle.write(json.dumps(records[2] | {"seq": 4}) + "\n")
    elif damage == "no-anchor":
        log.anchor_path.unlink()
    else:
        log.key_path.unlink()
    size = log.path.stat().st_size
    with pytest.raises(AuditError, match=message):
        AuditLog(tmp_path).append("cli:ann", "scan")
    assert log.path.stat().st_size == size  # nothing written
    assert AuditLog(tmp_path).verify()


def test_audit_verify_reports_a_key_others_can_read(tmp_path):
    log = filled(tmp_path, 1)
    log.key_path.chmod(0o644)
    assert log.verify() == [f"the audit key {log.key_path} can be read by other users (mode 644); "
                            f"`chmod 600 {log.key_path}`"]


def test_audit_key_kept_apart_from_the_log(tmp_path):
    key_file = tmp_path / "secrets" / "audit.key"
    log = AuditLog(tmp_path / "home", key_file=key_file)
    log.append("cli:ann", "scan")
    assert key_file.is_file() and not (tmp_path / "home" / "audit" / "anchor.key").exists()
    assert AuditLog(tmp_path / "home", key_file=key_file).verify() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": ""}, "needs an actor"),
        ({"input_sha256": "AB" * 32}, "64 lowercase hex digits"),
        ({"details": {"blob": "x" * 20000}}, "over the 16384 byte limit"),
    ],
)
def test_audit_append_rejects_bad_records(tmp_path, kwargs, message):
    log = AuditLog(tmp_path)
    with pytest.raises(AuditError, match=message):
        log.append(**({"actor": "cli:ann", "action": "scan"} | kwargs))
    assert log.count() == 0


def test_audit_appends_from_threads_make_one_chain(tmp_path):
    shared = AuditLog(tmp_path)

    def work(name: str) -> None:
        own = AuditLog(tmp_path)  # separate instances meet at the flock, a shared one at its thread lock too
        for i in range(15):
            (shared if i % 2 else own).append(name, "scan", f"{name}-{i}")

    threads = [threading.Thread(target=work, args=(f"thread-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = shared.records()
    assert [r.seq for r in records] == list(range(1, 91))
    assert len({r.subject for r in records}) == 90
    assert shared.verify() == []


def append_many(home: str, actor: str, count: int, start: threading.Barrier) -> None:
    """Runs in each process; all start appending together."""
    log = AuditLog(Path(home))
    start.wait(timeout=120)
    for i in range(count):
        log.append(actor, "scan", f"{actor}-{i}")


def test_audit_appends_from_processes_make_one_chain(tmp_path):
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold locks in other threads
    start = context.Barrier(3)
    workers = [context.Process(target=append_many, args=(str(tmp_path), f"process-{n}", 30, start))
               for n in range(2)]
    for worker in workers:
        worker.start()
    append_many(str(tmp_path), "parent", 30, start)
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    log = AuditLog(tmp_path)
    records = log.records()
    assert [r.seq for r in records] == list(range(1, 91))
    assert {r.actor for r in records} == {"process-0", "process-1", "parent"}
    assert log.verify() == []
