"""`AuditLog`: a tamper-evident, append-only record of who did what, when, to which input.

Each record is a row of the database's `audit_records` (data.audit_records). Its `hash` is the
SHA-256 of its canonical JSON (without `hash` and `mac`) and its `prev` is the hash of the record
before it, so an edited, deleted or reordered record breaks the chain. Its `mac` is an HMAC-SHA256
of `hash` under the key in `HOME/audit/anchor.key`, so a chain rewritten by someone without the key
is caught as well. The `audit_head` row holds the count and the last hash, MAC'ed: a cut tail is
caught, and an append reads the head, never the whole chain. Once an append has committed, its head
goes to the anchor file and the witnesses (data.audit_heads), which catch a database rolled back to
an older copy. The key, the anchor and a witness file may each live elsewhere (`HAZARDVISION_AUDIT_*`).

An append made while the action's transaction is open (`Database.session()`) joins it: a scan, a
review or a key and its record commit together or not at all. Processes sharing one database
append to one chain: an append locks the head row first.

Homes from before the database held the chain kept it in `HOME/audit/audit.jsonl`; `adopt()`
checks that file and copies it, hashes unchanged, into an empty chain. A chain from before the
anchor existed gets one when its log is first opened (an `audit.anchor` record); the head row says
whether a chain was ever anchored, so an anchor deleted later is still reported by `verify`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazardvision.data.audit_heads import (
    ANCHOR_FILE_VARIABLE,
    KEY_FILE_VARIABLE,
    WITNESS_SECONDS_VARIABLE,
    AnchorFile,
    FileWitness,
    HeadCheck,
    HeadMark,
    Witness,
    env_path,
    env_seconds,
    export_quietly,
    witnesses_from_environment,
)
from hazardvision.data.audit_records import GENESIS, AuditRecords, Head
from hazardvision.data.database import Database
from hazardvision.data.key_files import create_key_file
from hazardvision.errors import AuditError, HazardVisionError

LEGACY_LOG = "audit.jsonl"
LEGACY_ANCHOR = "anchor.json"
ADOPTED_SUFFIX = ".adopted"
KEY_FILE = "anchor.key"
ANCHOR_FILE = "head.json"  # not LEGACY_ANCHOR: that one belongs to a file log not yet adopted
KEY_BYTES = 32
UPGRADE_ACTOR = "hazardvision:upgrade"
"""The actor of the record that anchors a chain from before anchors existed."""
MAX_RECORD_BYTES = 16 * 1024  # details stay small: a large payload belongs in the bank, referenced by its hash

log = logging.getLogger(__name__)

__all__ = ["GENESIS", "AuditLog", "AuditRecord", "canonical_json", "local_actor", "record_hash", "record_mac"]


class AuditRecord(BaseModel):
    """One record of the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    seq: int = Field(ge=1, description="Position in the log, from 1.")
    at: str = Field(description="When it happened: UTC, ISO-8601.")
    actor: str = Field(description='Who did it: an API key name, or "cli:<user>" for the command line.')
    action: str = Field(description='What was done, e.g. "scan", "review.confirm", "model.activate", "key.create".')
    subject: str | None = Field(description="What it was done to, e.g. a scan id or a key name.")
    input_sha256: str | None = Field(description="SHA-256 of the input (a photo's bytes), if any.")
    model_versions: dict[str, str] | None = Field(description="Model pack -> version that produced the result.")
    details: dict[str, Any] = Field(description="A few more facts about the action.")
    prev: str = Field(description="Hash of the previous record (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of the record's canonical JSON without `hash` and `mac`.")
    mac: str = Field(description="HMAC-SHA256 of `hash` under the audit key.")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The one byte form of a record that its hash is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def record_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON, leaving out `hash` and `mac`."""
    return hashlib.sha256(canonical_json({k: v for k, v in fields.items() if k not in ("hash", "mac")})).hexdigest()


def record_mac(key: bytes, message: str | bytes) -> str:
    return hmac.new(key, message.encode() if isinstance(message, str) else message, hashlib.sha256).hexdigest()


def head_mac(key: bytes, count: int, head: str) -> str:
    return record_mac(key, canonical_json({"count": count, "head": head}))


def local_actor() -> str:
    """The actor of a command run on this machine: "cli:<user>"."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in the environment or the password database (some containers)
        return f"cli:uid{os.getuid()}"


@dataclass(frozen=True)
class _Tail:
    """Where a chain ends: the last record's seq and hash."""

    count: int = 0
    head: str = GENESIS


class AuditLog:
    """The audit log of one database.

    Its MAC key is `key_file`, else $HAZARDVISION_AUDIT_KEY_FILE, else `HOME/audit/anchor.key`; its anchor
    `anchor_file`, else $HAZARDVISION_AUDIT_ANCHOR_FILE, else `HOME/audit/head.json`; `witnesses` (default: those
    the environment names) get each committed head unless `witness_each_append` is false (the service then
    exports every few seconds with `export_head`).
    """

    def __init__(self, database: Database, *, key_file: Path | None = None, anchor_file: Path | None = None,
                 witnesses: list[Witness] | None = None, witness_each_append: bool | None = None) -> None:
        self.database = database
        self.folder = database.home.audit
        self.key_path = key_file or env_path(KEY_FILE_VARIABLE) or self.folder / KEY_FILE
        self.anchor = AnchorFile(anchor_file or env_path(ANCHOR_FILE_VARIABLE) or self.folder / ANCHOR_FILE)
        self.witnesses = witnesses_from_environment() if witnesses is None else witnesses
        self.witness_each_append = (env_seconds(WITNESS_SECONDS_VARIABLE) == 0 if witness_each_append is None
                                    else witness_each_append)
        self.legacy_path = self.folder / LEGACY_LOG
        self.chain = AuditRecords(database)
        self._key: bytes | None = None
        self._exported: tuple[int, str] | None = None
        self._anchor_an_older_chain()

    @classmethod
    def at(cls, home: Path | None = None, *, url: str | None = None, key_file: Path | None = None,
           anchor_file: Path | None = None, create: bool = True) -> AuditLog:
        """The audit log of a home's database (see `Database.of_home`)."""
        return cls(Database.of_home(home, url=url, create=create), key_file=key_file, anchor_file=anchor_file)

    @property
    def where(self) -> str:
        """Where the chain is kept, for messages: the database, password hidden."""
        return f"the audit chain in {self.database.url}"

    def append(
        self, actor: str, action: str, subject: str | None = None, *, input_sha256: str | None = None,
        model_versions: Mapping[str, str] | None = None, details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record, in the transaction open on this thread if there is one."""
        if not actor or not action:
            raise AuditError("an audit record needs an actor and an action")
        if input_sha256 is not None and (len(input_sha256) != 64 or not _is_hex(input_sha256)):
            raise AuditError(f"input_sha256 must be 64 lowercase hex digits, not {input_sha256!r}")
        if self.legacy_path.exists():
            raise AuditError(f"{self.legacy_path} holds the audit log from before the database kept it; nothing is "
                             "appended until `hazardvision audit adopt` has copied it in (the service does so when it "
                             "starts). A file log that cannot be adopted is not intact: move it out of "
                             f"{self.folder} to keep it as evidence, and a new chain starts")
        key = self._key_for_append()
        fields: dict[str, Any] = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "actor": actor, "action": action, "subject": subject, "input_sha256": input_sha256,
            "model_versions": dict(model_versions) if model_versions is not None else None,
            "details": dict(details or {}),
        }
        try:
            size = len(canonical_json(fields))
        except ValueError as error:
            raise AuditError(f"an audit record's details must be plain JSON: {error}") from error
        if size > MAX_RECORD_BYTES:
            raise AuditError(f"an audit record of {size} bytes is over the {MAX_RECORD_BYTES} byte limit; keep "
                             "details small and reference large data by its hash")
        return self._append(fields, key)

    def _append(self, fields: dict[str, Any], key: bytes, *, unanchored_only: bool = False) -> AuditRecord:
        """Chain `fields` after the locked head; with `unanchored_only`, `_Anchored` (nothing appended) when the
        head row says the chain has an anchor."""

        def build(head: Head) -> tuple[dict[str, Any], Head]:
            if unanchored_only and head.anchored:
                raise _Anchored
            if head.count and not hmac.compare_digest(head_mac(key, head.count, head.head), head.mac):
                raise AuditError(f"the head of {self.where} has a wrong MAC; nothing is appended to a chain that "
                                 "may have been tampered with: run `hazardvision audit verify`")
            record = {**fields, "seq": head.count + 1, "prev": head.head}
            digest = record_hash(record)
            record |= {"hash": digest, "mac": record_mac(key, digest)}
            return record, Head(head.count + 1, digest, head_mac(key, head.count + 1, digest))

        try:
            return AuditRecord.model_validate(self.chain.append(build, committed=self._committed))
        except ValidationError as error:
            raise AuditError(f"not an audit record: {error}") from error

    def _anchor_an_older_chain(self) -> None:
        """Anchor a chain from before anchors existed, as of now, so that `verify` passes right after the upgrade.

        Such a chain's head row was never marked anchored, and no anchor file is there. Its head is anchored by
        appending an `audit.anchor` record (its commit writes the anchor and marks the head row, so two processes
        opening the home at once append one). A head row marked anchored whose anchor is missing is left for
        `verify` to report: that anchor was deleted. One that finds an anchor (written before the head row could say
        so) is marked. A failure here (no key, a wrong head MAC) is logged, and `verify` reports the cause."""
        if self.database.open_session() is not None:
            return  # never inside another transaction; the next opening does it
        try:
            head = self.chain.head()
            if head is None or not head.count or head.anchored or self.legacy_path.exists() \
                    or not self.key_path.exists():
                return
            try:
                found = self.anchor.read() is not None
            except ValueError:
                found = True  # a torn one: verify says so
            if found:
                self.chain.mark_anchored()
                return
            fields: dict[str, Any] = {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"), "actor": UPGRADE_ACTOR,
                "action": "audit.anchor", "subject": None, "input_sha256": None, "model_versions": None,
                "details": {"count": head.count, "head": head.head, "anchor": str(self.anchor.path),
                            "reason": "the chain is from before the audit anchor existed"}}
            record = self._append(fields, self._key_for_append(), unanchored_only=True)
        except _Anchored:
            return  # another process anchored it meanwhile
        except HazardVisionError as error:
            log.warning("%s is from before the audit anchor existed and was not anchored: %s", self.where, error)
            return
        log.info("%s is from before the audit anchor existed: anchored at record %d (audit.anchor) in %s",
                 self.where, record.seq, self.anchor.path)

    def _sign(self, body: dict[str, Any]) -> str:
        assert self._key is not None
        return record_mac(self._key, canonical_json(body))

    def _committed(self, head: Head) -> None:
        """After the append's transaction committed: the anchor moves forward, the witnesses hear of it."""
        mark = HeadMark.now(head.count, head.head)
        export_quietly(self.anchor, mark, self._sign)
        if self.witness_each_append:
            for witness in self.witnesses:
                export_quietly(witness, mark, self._sign)
            self._exported = (head.count, head.head)

    def export_head(self) -> HeadMark | None:
        """Send the chain's head to the witnesses if it moved since the last export (the periodic export); the
        head sent, or None."""
        head = self.chain.head()
        if head is None or not head.count or self._exported == (head.count, head.head) or not self.witnesses:
            return None
        self._key_for_append()
        if not hmac.compare_digest(head_mac(self._key or b"", head.count, head.head), head.mac):
            raise AuditError(f"the head of {self.where} has a wrong MAC; it is not exported to the witnesses: run "
                             "`hazardvision audit verify`")
        mark = HeadMark.now(head.count, head.head)
        for witness in self.witnesses:
            export_quietly(witness, mark, self._sign)
        self._exported = (head.count, head.head)
        return mark

    def records(self, *, action: str | None = None, last: int | None = None) -> list[AuditRecord]:
        """Records, oldest first; `action` keeps that action and its sub-actions ("key" keeps "key.create")."""
        try:
            return [AuditRecord.model_validate(entry) for entry in self.chain.entries(action=action, last=last)]
        except ValidationError as error:
            raise AuditError(f"{self.where} holds a record that is not an audit record; `hazardvision audit verify` "
                             "checks the whole chain") from error

    def count(self) -> int:
        """Records in the chain, as its head says (0 for a chain never written)."""
        head = self.chain.head()
        return head.count if head else 0

    def verify(self, *, witness: Path | None = None) -> list[str]:
        """Problems with the chain, its MACs, its head, the anchor, the key and, if given, the witness file (empty
        when intact)."""
        problems: list[str] = []
        key = self._key_for_verify(problems)
        tail = check_chain(((f"record {e['seq']}", e) for e in self.chain.entries()), key, problems)
        head = self.chain.head()
        if head is None:
            if tail.count:
                problems.append(f"the head of {self.where} is missing: a cut tail cannot be detected")
        else:
            if key is not None and not hmac.compare_digest(head_mac(key, head.count, head.head), head.mac):
                problems.append(f"the head of {self.where} has a wrong MAC: it was rewritten without the audit key")
            if head.count > tail.count:
                first = tail.count + 1
                missing = f"record {first} is" if first == head.count else f"records {first}..{head.count} are"
                problems.append(f"the chain ends at record {tail.count} but its head at record {head.count}: its tail "
                                f"was cut ({missing} missing)")
            elif (head.count, head.head) != (tail.count, tail.head):
                problems.append(f"the chain ({tail.count} records, last {tail.head[:12]}) does not match its head "
                                f"({head.count} records, last {head.head[:12]}): records or the head were rewritten")
        heads = HeadCheck(
            None if key is None else (lambda body: record_mac(key, canonical_json(body))), tail.count,
            reported=head.count if head is not None and head.count > tail.count else 0,  # a cut tail, said above
            hash_at=self.chain.hash_at, hashes=lambda: ((e["seq"], e["hash"]) for e in self.chain.entries()),
            problems=problems)
        heads.anchor(self.anchor)
        if witness is not None:
            heads.witness(FileWitness(witness))
        if self.legacy_path.exists():
            problems.append(f"{self.legacy_path} holds an audit log from before the database kept it; "
                            "`hazardvision audit adopt` checks it and copies it into the database")
        return problems

    def adopt(self) -> int:
        """Copy the home's file log (from before the database kept the chain) into an empty chain; return how
        many records it held. The file is checked first and renamed `*.adopted` once copied."""
        if not self.legacy_path.exists():
            return 0
        if self.count():
            if self._adopted_already():  # a crash between the copy and the rename: finish the rename
                self._retire_legacy_files()
                return 0
            raise AuditError(f"{self.where} already holds records, so the file log {self.legacy_path} cannot join it "
                             "without forking the chain; keep the file as the record of what came before")
        problems: list[str] = []
        key = self._key_for_verify(problems)
        if key is None:
            raise AuditError(f"the file log {self.legacy_path} cannot be checked: {'; '.join(problems)}")
        entries = _legacy_entries(self.legacy_path, problems)
        tail = check_chain(entries, key, problems)
        _check_legacy_anchor(self.folder / LEGACY_ANCHOR, key, tail, problems)
        if problems:
            raise AuditError(f"the file log {self.legacy_path} is not intact, so it is not adopted: "
                             + "; ".join(problems))
        records = [data for _, data in entries]
        self.chain.import_records(records, Head(tail.count, tail.head, head_mac(key, tail.count, tail.head)))
        self._key = key
        self._committed(Head(tail.count, tail.head, ""))
        self._retire_legacy_files()
        return len(records)

    def _adopted_already(self) -> bool:
        """Whether the database's chain starts with the file log's records (same last hash at the same seq)."""
        entries = _legacy_entries(self.legacy_path, [])
        if not entries:
            return False
        last = entries[-1][1]
        stored = [e for e in self.chain.entries() if e["seq"] == last.get("seq")]
        return bool(stored) and stored[0]["hash"] == last.get("hash")

    def _retire_legacy_files(self) -> None:
        for name in (LEGACY_LOG, LEGACY_ANCHOR):
            path = self.folder / name
            if path.exists():
                path.replace(path.with_name(name + ADOPTED_SUFFIX))

    def _key_for_append(self) -> bytes:
        if self._key is None:
            if self.key_path.exists():
                self._key = self._read_key()
            elif self.count() and not self.key_path.exists():  # not made by another process meanwhile
                raise AuditError(f"the audit key {self.key_path} is missing, so {self.where} can neither be extended "
                                 "nor checked; restore the key from its backup")
            else:
                self._key = self._create_key()
        return self._key

    def _create_key(self) -> bytes:
        """A new key, in place with its content in one step; the other's if another process was first."""
        key = secrets.token_bytes(KEY_BYTES)
        try:
            created = create_key_file(self.key_path, key.hex().encode() + b"\n")
        except OSError as error:
            raise AuditError(f"cannot create the audit key {self.key_path}: {error.strerror}") from error
        return key if created else self._read_key()

    def _read_key(self) -> bytes:
        try:
            text = self.key_path.read_text(encoding="ascii", errors="replace").strip()
        except OSError as error:
            raise AuditError(f"cannot read the audit key {self.key_path}: {error.strerror}") from error
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < KEY_BYTES:
            raise AuditError(f"the audit key {self.key_path} is not {KEY_BYTES} bytes in hex (it may still be being "
                             "written by another process); restore it from its backup")
        return key

    def _key_for_verify(self, problems: list[str]) -> bytes | None:
        if not self.key_path.exists():
            if self.count() or self.legacy_path.exists():
                problems.append(f"the audit key {self.key_path} is missing: record MACs cannot be checked; restore "
                                "the key from its backup")
            return None
        mode = stat.S_IMODE(self.key_path.stat().st_mode)
        if mode & 0o077:
            problems.append(f"the audit key {self.key_path} can be read by other users (mode {mode:o}); "
                            f"`chmod 600 {self.key_path}`")
        try:
            return self._read_key()
        except HazardVisionError as error:
            problems.append(str(error))
            return None


class _Anchored(Exception):
    """The chain was anchored meanwhile: the upgrade's record is not appended."""


def check_chain(entries: Iterable[tuple[str, Mapping[str, Any]]], key: bytes | None, problems: list[str]) -> _Tail:
    """Check records (each named for messages) in order: seq, chain, hash and MAC; return where they end."""
    tail = _Tail()
    expected_seq: int | None = 1
    prev: str | None = GENESIS
    for name, data in entries:
        try:
            record = AuditRecord.model_validate(data)
        except ValidationError:
            problems.append(f"{name} is not a valid audit record")
            expected_seq, prev = None, None
            continue
        if expected_seq is not None and record.seq != expected_seq:
            if record.seq > expected_seq:
                first, last = expected_seq, record.seq - 1
                missing = f"record {first} was" if first == last else f"records {first}..{last} were"
                problems.append(f"{name} follows record {first - 1}: {missing} deleted")
            else:
                problems.append(f"{name} is out of order: record {expected_seq} was expected")
        elif prev is not None and record.prev != prev:
            problems.append(f"{name} does not chain to the record before it: a record was replaced, inserted or "
                            "deleted")
        if record_hash(data) != record.hash:
            problems.append(f"{name} does not match its hash: it was edited")
        elif key is not None and not hmac.compare_digest(record_mac(key, record.hash), record.mac):
            problems.append(f"{name} has a wrong MAC: it was rewritten without the audit key")
        tail = _Tail(record.seq, record.hash)
        expected_seq, prev = record.seq + 1, record.hash
    return tail


def _legacy_entries(path: Path, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    entries = []
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as error:
        raise AuditError(f"cannot read the file log {path}: {error.strerror}") from error
    for number, line in enumerate(lines[:-1] if lines and not lines[-1] else lines, 1):
        try:
            data = json.loads(line)
        except ValueError:
            problems.append(f"line {number} of {path} is not JSON (a crash during an append, or a cut log)")
            continue
        entries.append((f"record {data.get('seq')} (line {number})" if isinstance(data, dict) else f"line {number}",
                        data if isinstance(data, dict) else {}))
    return entries


def _check_legacy_anchor(path: Path, key: bytes, tail: _Tail, problems: list[str]) -> None:
    """The file log's anchor (count, head, size, MAC'ed) must name the log's last record: no cut tail."""
    try:
        data = json.loads(path.read_bytes())
        body = {"count": data["count"], "head": data["head"], "size": data["size"]}
        intact = hmac.compare_digest(record_mac(key, canonical_json(body)), str(data["mac"]))
    except FileNotFoundError:
        problems.append(f"the anchor {path} of the file log is missing: a cut tail cannot be detected")
        return
    except (OSError, ValueError, KeyError, TypeError):
        problems.append(f"the anchor {path} of the file log is not an audit anchor")
        return
    if not intact:
        problems.append(f"the anchor {path} has a wrong MAC: it was rewritten without the audit key")
    elif (body["count"], body["head"]) != (tail.count, tail.head):
        problems.append(f"the file log ends at record {tail.count} but its anchor names record {body['count']}")


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)
