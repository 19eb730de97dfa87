"""Where the audit chain's head is kept outside its database: the anchor file and the witnesses.

A database restored from an older copy holds an older chain that is intact in itself: its head
row went back with it. The anchor (`HOME/audit/head.json`, or a file on another volume) holds the
highest head the log ever committed, MAC'ed, and only ever moves forward; a witness (an
append-only JSON-lines file elsewhere, or syslog) gets every head as it is committed, or every
few seconds. `audit verify` fails when the chain is shorter than what either knows, or holds
another record at that position: a rollback of the database, and of every file of the home with
it, is caught by a copy kept where the home's writer cannot reach.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hmac
import json
import logging
import os
import secrets
import syslog
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hazardvision.home import private_file, private_folder, private_opener

log = logging.getLogger(__name__)

KEY_FILE_VARIABLE = "HAZARDVISION_AUDIT_KEY_FILE"
ANCHOR_FILE_VARIABLE = "HAZARDVISION_AUDIT_ANCHOR_FILE"
WITNESS_FILE_VARIABLE = "HAZARDVISION_AUDIT_WITNESS_FILE"
WITNESS_SYSLOG_VARIABLE = "HAZARDVISION_AUDIT_WITNESS_SYSLOG"
WITNESS_SECONDS_VARIABLE = "HAZARDVISION_AUDIT_WITNESS_SECONDS"
SYSLOG_TAG = "hazardvision-audit"


@dataclass(frozen=True)
class HeadMark:
    """The chain's head at one moment: its record count, its last hash and when it was taken."""

    count: int
    head: str
    at: str

    @classmethod
    def now(cls, count: int, head: str) -> HeadMark:
        return cls(count, head, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def body(self) -> dict[str, Any]:
        return {"count": self.count, "head": self.head, "at": self.at}


class Signer(Protocol):
    def __call__(self, body: dict[str, Any]) -> str: ...


def env_path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def env_flag(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


def env_seconds(variable: str) -> float:
    try:
        return max(0.0, float(os.environ.get(variable, "0") or 0))
    except ValueError:
        return 0.0


class AnchorFile:
    """The highest head ever committed, MAC'ed, in one small JSON file that only moves forward."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any] | None:
        """The anchor's JSON, None when there is none; ValueError when it is not an anchor."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ValueError(f"the audit anchor {self.path} cannot be read: {error}") from error
        if not isinstance(data, dict) or not {"count", "head", "at", "mac"} <= data.keys() \
                or not isinstance(data["count"], int):
            raise ValueError(f"the audit anchor {self.path} is not an audit anchor")
        return data

    def advance(self, mark: HeadMark, sign: Signer) -> None:
        """Write `mark` unless the anchor already names a later head (appends commit in any order)."""
        private_folder(self.path.parent)
        with _locked(self.path.with_name(f".{self.path.name}.lock")):
            try:
                current = self.read()
            except ValueError:
                current = None  # a torn anchor is replaced; verify reported it meanwhile
            if current is not None and current["count"] >= mark.count:
                return
            data = json.dumps({**mark.body(), "mac": sign(mark.body())}).encode() + b"\n"
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            try:
                descriptor = private_file(temporary, exclusive=True)
                try:
                    os.write(descriptor, data)
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
                os.replace(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)


class Witness(Protocol):
    """Somewhere a head is exported to, out of reach of whoever can write the home."""

    def export(self, mark: HeadMark, sign: Signer) -> None: ...


class FileWitness:
    """An append-only JSON-lines file: one line per head exported."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, mark: HeadMark, sign: Signer) -> None:
        line = json.dumps({**mark.body(), "mac": sign(mark.body())}, separators=(",", ":")).encode() + b"\n"
        private_folder(self.path.parent)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line)  # one write of O_APPEND: lines of several processes never interleave
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def marks(self, problems: list[str]) -> list[dict[str, Any]]:
        """The witness's lines; one that is not a head is a problem."""
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError as error:
            problems.append(f"the audit witness {self.path} cannot be read: {error.strerror}")
            return []
        marks = []
        for number, line in enumerate(lines, 1):
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or not isinstance(data.get("count"), int) \
                        or not isinstance(data.get("head"), str):
                    raise ValueError(line)
            except ValueError:
                problems.append(f"line {number} of the audit witness {self.path} is not a head")
                continue
            marks.append(data | {"line": number})
        return marks


class SyslogWitness:
    """Heads as syslog messages (facility auth), for a log host to keep."""

    def export(self, mark: HeadMark, sign: Signer) -> None:
        syslog.openlog(SYSLOG_TAG, 0, syslog.LOG_AUTH)
        syslog.syslog(syslog.LOG_NOTICE, f"audit head count={mark.count} head={mark.head} at={mark.at} "
                      f"mac={sign(mark.body())}")


def witnesses_from_environment() -> list[Witness]:
    found: list[Witness] = []
    if (path := env_path(WITNESS_FILE_VARIABLE)) is not None:
        found.append(FileWitness(path))
    if env_flag(WITNESS_SYSLOG_VARIABLE):
        found.append(SyslogWitness())
    return found


def export_quietly(target: AnchorFile | Witness, mark: HeadMark, sign: Signer) -> None:
    """Export after the commit: the action stands whatever happens here, so a failure is logged."""
    try:
        if isinstance(target, AnchorFile):
            target.advance(mark, sign)
        else:
            target.export(mark, sign)
    except OSError as error:
        log.warning("the audit head %d could not be written to %s: %s", mark.count,
                    getattr(target, "path", "syslog"), error)


def signed(mark: dict[str, Any], sign: Signer) -> bool:
    body = {"count": mark.get("count"), "head": mark.get("head"), "at": mark.get("at")}
    return hmac.compare_digest(sign(body), str(mark.get("mac", "")))


class HeadCheck:
    """Checks a chain (its length `count`, its hashes) against the anchor and a witness, into `problems`.

    `sign` is None when the audit key is missing (MACs are then not checked); `reported` is the record up to which
    the database's head row already names a cut tail (not said twice).
    """

    def __init__(self, sign: Signer | None, count: int, *, reported: int, hash_at: Callable[[int], str | None],
                 hashes: Callable[[], Iterable[tuple[int, str]]], problems: list[str]) -> None:
        self.sign, self.count, self.reported = sign, count, reported
        self.hash_at, self.hashes, self.problems = hash_at, hashes, problems

    def anchor(self, anchor: AnchorFile) -> None:
        try:
            data = anchor.read()
        except ValueError as error:
            self.problems.append(str(error))
            return
        where = f"the audit anchor {anchor.path}"
        if data is None:
            if self.count:
                self.problems.append(f"{where} is missing: a database restored from an older copy cannot be "
                                     "detected (the next append writes it again)")
            return
        if self.sign is not None and not signed(data, self.sign):
            self.problems.append(f"{where} has a wrong MAC: it was rewritten without the audit key")
            return
        self._mark(data, where)

    def witness(self, witness: FileWitness) -> None:
        where = f"the audit witness {witness.path}"
        marks = witness.marks(self.problems)
        if self.sign is not None:
            sign = self.sign
            for mark in marks:
                if not signed(mark, sign):
                    self.problems.append(f"line {mark['line']} of {where} has a wrong MAC: it was not written by "
                                         "this log's key")
            marks = [mark for mark in marks if signed(mark, sign)]
        if not marks:
            if self.count or not self.problems:
                self.problems.append(f"{where} names no head: it cannot confirm the chain")
            return
        furthest = max(marks, key=lambda mark: int(mark["count"]))
        self._mark(furthest, where)
        # Every head witnessed must be in the chain: a rolled-back chain that grew past the furthest one again
        # holds other records at the positions witnessed before.
        witnessed: dict[int, dict[str, Any]] = {}
        for mark in marks:
            first = witnessed.setdefault(int(mark["count"]), mark)
            if first["head"] != mark["head"]:
                self.problems.append(f"lines {first['line']} and {mark['line']} of {where} name two different "
                                     f"records {mark['count']}: the chain was rolled back and rewritten")
                break  # the first fork says it; the rest follow from it
        for seq, digest in self.hashes():
            seen = witnessed.get(seq)
            if seen is not None and seen is not furthest and digest != seen["head"]:
                self.problems.append(f"record {seq} of the chain is not the one {where} knows (line {seen['line']}, "
                                     f"of {seen.get('at')}): the chain was rewritten from there on")
                return

    def _mark(self, mark: dict[str, Any], where: str) -> None:
        count, head = int(mark["count"]), str(mark["head"])
        if count > self.count:
            if count > self.reported:
                self.problems.append(f"the chain ends at record {self.count} but {where} knows record {count} (of "
                                     f"{mark.get('at')}): records {self.count + 1}..{count} are missing; the "
                                     "database was rolled back to an older copy or its tail was cut")
        elif count and self.hash_at(count) != head:
            self.problems.append(f"record {count} of the chain is not the one {where} knows (of {mark.get('at')}): "
                                 "the chain was rewritten from there on")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b", opener=private_opener) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
