"""`AuditLog`: a tamper-evident, append-only record of who did what, when, to which input.

Each line of `HOME/audit/audit.jsonl` is one record. Its `hash` is the SHA-256 of its canonical
JSON (without `hash` and `mac`) and its `prev` is the hash of the record before it, so an edited,
deleted or reordered record breaks the chain. Its `mac` is an HMAC-SHA256 of `hash` under the key
in `anchor.key`, so a chain rewritten from scratch by someone without the key is caught as well.
`anchor.json` keeps the record count, the head hash and the log's size (MAC'ed too): a cut tail
is caught, and an append reads the anchor, never the whole log.

An append writes and fsyncs its line, then replaces the anchor. A crash in between leaves the log
one record ahead of its anchor; the next append re-anchors it once that record's chain and MAC
check out, and refuses to write onto any other mismatch.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazardvision.errors import AuditError
from hazardvision.home import Home

LOG_FILE = "audit.jsonl"
ANCHOR_FILE = "anchor.json"
KEY_FILE = "anchor.key"
LOCK_FILE = ".lock"
GENESIS = "0" * 64
"""The `prev` of the first record."""
KEY_BYTES = 32
MAX_RECORD_BYTES = 16 * 1024  # details stay small: a large payload belongs in the bank, referenced by its hash


class AuditRecord(BaseModel):
    """One line of the audit log."""

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


def local_actor() -> str:
    """The actor of a command run on this machine: "cli:<user>"."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in the environment or the password database (some containers)
        return f"cli:uid{os.getuid()}"


@dataclass(frozen=True)
class _Anchor:
    count: int
    head: str
    size: int

    def body(self) -> dict[str, Any]:
        return {"count": self.count, "head": self.head, "size": self.size}


_EMPTY = _Anchor(0, GENESIS, 0)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AuditLog:
    """The audit log of one bank home: `HOME/audit/`.

    Safe to share between threads, and between processes on one machine (an flock on
    `HOME/audit/.lock` serialises appends).
    """

    def __init__(self, home: Path | None = None, *, key_file: Path | None = None) -> None:
        """`key_file`: where the MAC key lives; default `HOME/audit/anchor.key`."""
        self.folder = Home.at(home).audit
        self.path = self.folder / LOG_FILE
        self.anchor_path = self.folder / ANCHOR_FILE
        self.key_path = key_file or self.folder / KEY_FILE
        self._thread_lock = threading.Lock()
        self._key: bytes | None = None

    def append(
        self, actor: str, action: str, subject: str | None = None, *, input_sha256: str | None = None,
        model_versions: Mapping[str, str] | None = None, details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Write one record at the end of the log and move the anchor to it."""
        if not actor or not action:
            raise AuditError("an audit record needs an actor and an action")
        if input_sha256 is not None and (len(input_sha256) != 64 or not _is_hex(input_sha256)):
            raise AuditError(f"input_sha256 must be 64 lowercase hex digits, not {input_sha256!r}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise AuditError(f"cannot create the audit folder {self.folder}: {error.strerror}") from error
        with self._thread_lock, self._locked(exclusive=True), _os_errors(self.folder):
            key = self._key_for_append()
            anchor = self._anchor_for_append(key)
            fields: dict[str, Any] = {
                "seq": anchor.count + 1,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                "actor": actor, "action": action, "subject": subject, "input_sha256": input_sha256,
                "model_versions": dict(model_versions) if model_versions is not None else None,
                "details": dict(details or {}), "prev": anchor.head,
            }
            digest = record_hash(fields)
            line = json.dumps({**fields, "hash": digest, "mac": record_mac(key, digest)}, ensure_ascii=False,
                              allow_nan=False).encode() + b"\n"
            if len(line) > MAX_RECORD_BYTES:
                raise AuditError(f"an audit record of {len(line)} bytes is over the {MAX_RECORD_BYTES} byte limit; "
                                 "keep details small and reference large data by its hash")
            try:
                record = AuditRecord.model_validate_json(line)  # exactly what a reader will get back
            except ValidationError as error:
                raise AuditError(f"not an audit record: {error}") from error
            self._write_line(line)
            self._write_anchor(key, _Anchor(anchor.count + 1, digest, anchor.size + len(line)))
        return record

    def records(self, *, action: str | None = None, last: int | None = None) -> list[AuditRecord]:
        """Records, oldest first; `action` keeps that action and its sub-actions ("key" keeps "key.create")."""
        kept: deque[AuditRecord] = deque(maxlen=last)
        with self._locked(exclusive=False), _os_errors(self.folder):
            try:
                handle = open(self.path, "rb")  # noqa: SIM115  # closed below; a missing log has no records
            except FileNotFoundError:
                return []
            with handle:
                for number, line in enumerate(handle, 1):
                    try:
                        record = AuditRecord.model_validate_json(line)
                    except ValidationError as error:
                        raise AuditError(f"line {number} of {self.path} is not an audit record; "
                                         "`hazardvision audit verify` checks the whole log") from error
                    if action is None or record.action == action or record.action.startswith(action + "."):
                        kept.append(record)
        return list(kept)

    def count(self) -> int:
        """Records in the log, as its anchor says (0 for a log never written)."""
        with _os_errors(self.folder):
            anchor, _mac = self._read_anchor()
        return anchor.count if anchor else 0

    def verify(self) -> list[str]:
        """Problems with the log's chain, MACs, anchor and key (empty when intact)."""
        problems: list[str] = []
        with self._locked(exclusive=False), _os_errors(self.folder):
            key = self._key_for_verify(problems)
            try:
                anchor, anchor_mac = self._read_anchor()
            except AuditError as error:
                problems.append(str(error))
                anchor, anchor_mac = None, None
            if anchor and key and not hmac.compare_digest(record_mac(key, canonical_json(anchor.body())),
                                                          anchor_mac or ""):
                problems.append(f"the anchor {self.anchor_path} has a wrong MAC: it was rewritten without the audit "
                                "key")
            tail = self._verify_chain(key, problems)
            self._verify_anchor(anchor, tail, problems, anchor_missing=not self.anchor_path.exists())
        return problems

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        """An flock on the audit folder's lock file: exclusive to append, shared to read a consistent log."""
        lock = self.folder / LOCK_FILE
        if not exclusive and not lock.exists():
            yield  # nobody ever appended: there is nothing to read consistently
            return
        try:
            descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600) if exclusive else os.open(lock, os.O_RDONLY)
        except OSError as error:
            raise AuditError(f"cannot open the audit lock {lock}: {error.strerror}") from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(descriptor)  # releases the flock

    def _key_for_append(self) -> bytes:
        if self._key is None:
            if self.key_path.exists():
                self._key = self._read_key()
            elif self.anchor_path.exists() or _size(self.path) > 0:
                raise AuditError(f"the audit key {self.key_path} is missing, so the log at {self.path} can neither be "
                                 "extended nor checked; restore the key from its backup")
            else:
                self._key = self._create_key()
        return self._key

    def _create_key(self) -> bytes:
        key = secrets.token_bytes(KEY_BYTES)
        self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, key.hex().encode() + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        _fsync_folder(self.key_path.parent)
        return key

    def _read_key(self) -> bytes:
        text = self.key_path.read_text(encoding="ascii", errors="replace").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < KEY_BYTES:
            raise AuditError(f"the audit key {self.key_path} is not {KEY_BYTES} bytes in hex; restore it from its "
                             "backup")
        return key

    def _key_for_verify(self, problems: list[str]) -> bytes | None:
        if not self.key_path.exists():
            if self.anchor_path.exists() or _size(self.path) > 0:
                problems.append(f"the audit key {self.key_path} is missing: record MACs cannot be checked; restore "
                                "the key from its backup")
            return None
        mode = stat.S_IMODE(self.key_path.stat().st_mode)
        if mode & 0o077:
            problems.append(f"the audit key {self.key_path} can be read by other users (mode {mode:o}); "
                            f"`chmod 600 {self.key_path}`")
        try:
            return self._read_key()
        except AuditError as error:
            problems.append(str(error))
            return None

    def _read_anchor(self) -> tuple[_Anchor | None, str | None]:
        """The anchor and its MAC, or (None, None) when there is no anchor file."""
        try:
            raw = self.anchor_path.read_bytes()
        except FileNotFoundError:
            return None, None
        try:
            data = json.loads(raw)
            anchor = _Anchor(data["count"], data["head"], data["size"])
            mac = data["mac"]
            if not (isinstance(anchor.count, int) and isinstance(anchor.size, int) and isinstance(anchor.head, str)
                    and isinstance(mac, str)):
                raise TypeError("wrong field types")
        except (ValueError, KeyError, TypeError) as error:
            raise AuditError(f"the anchor {self.anchor_path} is not an audit anchor ({error}); it was damaged or "
                             "replaced") from error
        return anchor, mac

    def _anchor_for_append(self, key: bytes) -> _Anchor:
        """The anchor to append after, re-anchored first if a crash left one valid record past it."""
        anchor, mac = self._read_anchor()
        if anchor is None:
            anchor = _EMPTY
        elif not hmac.compare_digest(record_mac(key, canonical_json(anchor.body())), mac or ""):
            raise AuditError(f"the anchor {self.anchor_path} has a wrong MAC; nothing is appended to a log that may "
                             "have been tampered with: run `hazardvision audit verify`")
        size = _size(self.path)
        if size == anchor.size:
            return anchor
        if size < anchor.size:
            raise AuditError(f"the audit log {self.path} is shorter than its anchor says ({size} < {anchor.size} "
                             "bytes): its tail was cut; nothing is appended: run `hazardvision audit verify`")
        with open(self.path, "rb") as handle:
            handle.seek(anchor.size)
            extra = handle.read(MAX_RECORD_BYTES + 1)
        digest = self._next_record_hash(extra, anchor, key)
        if digest is None:
            raise AuditError(f"the audit log {self.path} has {size - anchor.size} bytes after its last anchored record "
                             "that are not one valid record; nothing is appended: run `hazardvision audit verify`")
        anchor = _Anchor(anchor.count + 1, digest, size)
        self._write_anchor(key, anchor)
        return anchor

    @staticmethod
    def _next_record_hash(extra: bytes, anchor: _Anchor, key: bytes) -> str | None:
        """The hash of `extra` if it is exactly the one valid record that follows `anchor`."""
        if not extra.endswith(b"\n") or extra.count(b"\n") != 1:
            return None
        try:
            data = json.loads(extra)
            record = AuditRecord.model_validate(data)
        except (ValueError, ValidationError):
            return None
        valid = (
            record.seq == anchor.count + 1 and record.prev == anchor.head and record_hash(data) == record.hash
            and hmac.compare_digest(record_mac(key, record.hash), record.mac)
        )
        return record.hash if valid else None

    def _write_line(self, line: bytes) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)  # the record is on disk before the anchor points at it
        finally:
            os.close(descriptor)

    def _write_anchor(self, key: bytes, anchor: _Anchor) -> None:
        body = anchor.body()
        data = json.dumps({**body, "mac": record_mac(key, canonical_json(body))}).encode() + b"\n"
        temporary = self.folder / f".{ANCHOR_FILE}.{os.getpid()}"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.anchor_path)  # readers see the old or the new anchor, never half of one
        _fsync_folder(self.folder)

    def _verify_chain(self, key: bytes | None, problems: list[str]) -> _Tail:
        """Check every line; return where the log ends."""
        tail = _Tail()
        try:
            handle = open(self.path, "rb")  # noqa: SIM115  # closed below; a missing log is an empty one
        except FileNotFoundError:
            return tail
        expected_seq: int | None = 1
        prev: str | None = GENESIS
        with handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    problems.append(f"line {number} is incomplete (a crash during an append, or a cut log)")
                    break
                try:
                    data = json.loads(line)
                    record = AuditRecord.model_validate(data)
                except (ValueError, ValidationError):
                    problems.append(f"line {number} is not a valid audit record")
                    expected_seq, prev = None, None
                    continue
                where = f"record {record.seq} (line {number})"
                if expected_seq is not None and record.seq != expected_seq:
                    if record.seq > expected_seq:
                        first, last = expected_seq, record.seq - 1
                        missing = f"record {first} was" if first == last else f"records {first}..{last} were"
                        problems.append(f"{where} follows record {first - 1}: {missing} deleted")
                    else:
                        problems.append(f"{where} is out of order: record {expected_seq} was expected")
                elif prev is not None and record.prev != prev:
                    problems.append(f"{where} does not chain to the record before it: a record was replaced, "
                                    "inserted or deleted")
                if record_hash(data) != record.hash:
                    problems.append(f"{where} does not match its hash: it was edited")
                elif key is not None and not hmac.compare_digest(record_mac(key, record.hash), record.mac):
                    problems.append(f"{where} has a wrong MAC: it was rewritten without the audit key")
                tail = _Tail(record.seq, record.hash, tail.head)
                expected_seq, prev = record.seq + 1, record.hash
        return tail

    def _verify_anchor(self, anchor: _Anchor | None, tail: _Tail, problems: list[str], *,
                       anchor_missing: bool) -> None:
        behind = "the anchor is 1 record behind the log (a crash during an append?); the next append re-anchors it"
        if anchor is None:
            if not anchor_missing or tail.count == 0:
                return  # no log yet, or an unreadable anchor already reported
            problems.append(behind if tail.count == 1 else
                            f"the anchor {self.anchor_path} is missing: a cut tail of the log cannot be detected")
        elif (anchor.count, anchor.head) == (tail.count, tail.head):
            return
        elif (anchor.count, anchor.head) == (tail.count - 1, tail.prev_head):
            problems.append(behind)
        elif anchor.count > tail.count:
            first = tail.count + 1
            missing = f"record {first} is" if first == anchor.count else f"records {first}..{anchor.count} are"
            problems.append(f"the log ends at record {tail.count} but its anchor at record {anchor.count}: "
                            f"its tail was cut ({missing} missing)")
        else:
            problems.append(f"the log ({tail.count} records, head {tail.head[:12]}) does not match its anchor "
                            f"({anchor.count} records, head {anchor.head[:12]}): the log or the anchor was rewritten")


@dataclass(frozen=True)
class _Tail:
    """Where the log ends: the last record's seq and hash, and the hash of the record before it."""

    count: int = 0
    head: str = GENESIS
    prev_head: str = GENESIS


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


@contextmanager
def _os_errors(folder: Path) -> Iterator[None]:
    """File system failures (full disk, permissions) as an `AuditError` a user can read."""
    try:
        yield
    except OSError as error:
        raise AuditError(f"the audit log in {folder} failed: {error.strerror or error}") from error
