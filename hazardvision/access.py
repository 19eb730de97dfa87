"""API keys and roles: who may call which part of the service.

A key is `hv_` and 32 random bytes; the bank keeps only its SHA-256, so a copy of the database
gives nobody a working key. Each key has one role, and PERMISSIONS below is the whole policy.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.base import utcnow
from hazardvision.data.keys import Keys
from hazardvision.data.service_records import ApiKey
from hazardvision.errors import ApiKeyError, Forbidden, Unauthenticated, UnknownApiKey


class Role(StrEnum):
    INSPECTOR = "inspector"
    """Uploads site photos and reviews findings."""
    PIPELINE = "pipeline"
    """A video monitoring pipeline sending frames."""
    ML = "ml"
    """ML staff: models and the training data behind them."""
    ADMIN = "admin"
    """Everything, including keys."""


class Permission(StrEnum):
    SCAN = "scan"
    REVIEW = "review"
    INSPECT = "inspect"
    FRAMES = "frames"
    ALERTS_READ = "alerts.read"
    MODELS_READ = "models.read"
    MODELS_ACTIVATE = "models.activate"
    MODELS_FORCE = "models.force"
    KEYS_MANAGE = "keys.manage"
    AUDIT_READ = "audit.read"
    PREANNOTATE = "preannotate"
    """Label Studio's ML backend: pre-annotations for a labelling project."""
    VIDEOS = "videos"
    """Video files uploaded for analysis: inspectors reviewing footage, and monitoring pipelines."""
    SCANS_DELETE = "scans.delete"
    """Deleting a scan and its photo (privacy requests): an admin's decision."""


_EVERY_ROLE = frozenset(Role)

# The access policy, all of it: which roles hold each permission.
PERMISSIONS: Mapping[Permission, frozenset[Role]] = MappingProxyType({
    Permission.SCAN: _EVERY_ROLE,
    Permission.REVIEW: frozenset({Role.INSPECTOR, Role.ML, Role.ADMIN}),
    Permission.INSPECT: frozenset({Role.INSPECTOR, Role.ADMIN}),
    Permission.FRAMES: frozenset({Role.PIPELINE, Role.ADMIN}),
    Permission.ALERTS_READ: _EVERY_ROLE,
    Permission.MODELS_READ: _EVERY_ROLE,
    Permission.MODELS_ACTIVATE: frozenset({Role.ML, Role.ADMIN}),
    Permission.MODELS_FORCE: frozenset({Role.ADMIN}),
    Permission.KEYS_MANAGE: frozenset({Role.ADMIN}),
    Permission.AUDIT_READ: frozenset({Role.ML, Role.ADMIN}),
    Permission.PREANNOTATE: frozenset({Role.ML, Role.ADMIN}),
    Permission.VIDEOS: frozenset({Role.INSPECTOR, Role.PIPELINE, Role.ADMIN}),
    Permission.SCANS_DELETE: frozenset({Role.ADMIN}),
})


def allowed(role: Role, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]


KEY_PREFIX = "hv_"
KEY_BYTES = 32
PREFIX_CHARS = 8
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # a busy key is not written to the database on every request
_SITE_CHARS = 200  # as long as a scan's site
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,99}")


SESSION_COOKIE = "hv_session"
"""The signed-in page's cookie: HttpOnly, SameSite=Strict, holding a session token (never the key)."""
CSRF_HEADER = "X-CSRF-Token"
"""The header a signed-in page's write carries: its session's CSRF token."""


class KeyRecord(BaseModel):
    """An API key as it is shown: never the key itself, only its first characters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(description="Key id.")
    name: str = Field(description="Who or what holds the key, unique among the active keys.")
    role: Role = Field(description="What the key may do: inspector, pipeline, ml or admin.")
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: dt.datetime = Field(description="When the key was created (UTC).")
    revoked_at: dt.datetime | None = Field(default=None, description="When the key was revoked, if it was.")
    last_used_at: dt.datetime | None = Field(default=None, description="Last use, to the minute; None if never used.")
    sites: tuple[str, ...] = Field(default=(), description="The sites whose scans, findings and reviews the key "
                                   "reads (besides the scans it made itself); empty: every site.")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class SignedIn:
    """A page's session: the key it acts for, its CSRF token and when it ends (the token only at sign-in)."""

    key: KeyRecord
    csrf_token: str
    expires_at: dt.datetime
    token: str = ""


def key_digest(key: str) -> str:
    """What the bank keeps of a key: its SHA-256 in hex."""
    return hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(
        id=row.id, name=row.name, role=Role(row.role), prefix=row.prefix, created_at=_utc(row.created_at),
        revoked_at=_utc(row.revoked_at) if row.revoked_at else None,
        last_used_at=_utc(row.last_used_at) if row.last_used_at else None, sites=tuple(row.sites or ()),
    )


def check(record: KeyRecord, permission: Permission) -> None:
    """Raise `Forbidden` unless the key's role holds `permission`."""
    if not allowed(record.role, permission):
        needed = " or ".join(role.value for role in Role if role in PERMISSIONS[permission])
        raise Forbidden(f"the key {record.name!r} has role {record.role.value}; {permission.value} needs role "
                        f"{needed}")


class ApiKeys:
    """The service's API keys, kept hashed in the bank database; creating and revoking one is audited."""

    check = staticmethod(check)

    def __init__(self, bank: SampleBank, audit: AuditLog | None = None) -> None:
        self.bank = bank
        self.records = Keys(bank.database)
        self.audit = audit or AuditLog(bank.database)

    def create(self, name: str, role: Role, *, actor: str = "cli",
               sites: Sequence[str] = ()) -> tuple[KeyRecord, str]:
        """A new key: its record and the key itself, which nobody can see again; `sites` limits the scans it reads
        (see `service.scopes`)."""
        if not _NAME.fullmatch(name) or name.isdigit():
            raise ApiKeyError(f"a key name is 1 to 100 letters, digits or ._@:+- starting with a letter or digit, and "
                              f"not a number alone (numbers are key ids); {name!r} is not")
        role = Role(role)
        chosen = sorted({site.strip() for site in sites})
        if any(not site or len(site) > _SITE_CHARS for site in chosen):
            raise ApiKeyError(f"a key's site is 1 to {_SITE_CHARS} characters, as scans name it; {sites!r} has another")
        key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
        with self.records.create(name=name, role=role.value, key_hash=key_digest(key),
                                 prefix=key[:PREFIX_CHARS], sites=chosen) as row:
            record = _record(row)
            # Inside the transaction: a key whose creation cannot be audited is not created.
            details: dict[str, object] = {"id": record.id, "role": role.value, "prefix": record.prefix}
            if chosen:  # a key of every site is recorded as keys were before sites existed
                details["sites"] = chosen
            self.audit.append(actor, "key.create", name, details=details)
        return record, key

    def revoke(self, name_or_id: str, *, actor: str = "cli") -> KeyRecord:
        """Revoke the active key of that name (or id); it is refused from now on."""
        # Names are never all digits, so a number is an id.
        is_id = name_or_id.isascii() and name_or_id.isdigit() and len(name_or_id) <= 18
        with self.records.revoke(key_id=int(name_or_id) if is_id else None,
                                 name=None if is_id else name_or_id) as row:
            if row is None:
                raise UnknownApiKey(f"no active key {name_or_id!r}; `hazardvision keys list` shows them")
            record = _record(row)
            self.audit.append(actor, "key.revoke", row.name, details={"id": row.id, "prefix": row.prefix})
        return record

    def authenticate(self, key: str | None) -> KeyRecord:
        """The active key's record; `Unauthenticated` for a missing, unknown or revoked key."""
        if not key:
            raise Unauthenticated("no API key given; an admin creates one with `hazardvision keys create`")
        digest = key_digest(key)
        row = self.records.by_hash(key_hash=digest)
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            raise Unauthenticated("unknown API key; check that it was copied whole, or ask an admin for a new one")
        if row.revoked_at is not None:
            raise Unauthenticated(f"the API key {row.prefix}... ({row.name!r}) was revoked; ask an admin for a "
                                  "new one")
        now = utcnow()
        if row.last_used_at is None or now - _utc(row.last_used_at) >= LAST_USED_RESOLUTION:
            self.records.mark_used(key_id=row.id, at=now)
            row.last_used_at = now
        return _record(row)

    def sign_in(self, key: str, *, lifetime: dt.timedelta) -> SignedIn:
        """Exchange a key for a session (the page keeps its token in a cookie, never the key); audited."""
        record = self.authenticate(key)
        token, csrf = secrets.token_urlsafe(KEY_BYTES), secrets.token_urlsafe(KEY_BYTES)
        expires = utcnow() + lifetime
        with self.records.open_session(key_id=record.id, token_hash=key_digest(token), csrf_token=csrf,
                                       expires_at=expires):
            self.audit.append(record.name, "session.start", record.name,
                              details={"role": record.role.value, "expires_at": expires.isoformat()})
        return SignedIn(record, csrf, expires, token)

    def session(self, token: str) -> SignedIn:
        """The open session of this token; `Unauthenticated` once it ended, expired or its key was revoked."""
        if not token:
            raise Unauthenticated("not signed in: POST /v1/session with your API key")
        row = self.records.web_session(token_hash=key_digest(token))
        if row is None or row.ended_at is not None or _utc(row.expires_at) <= utcnow():
            raise Unauthenticated("the session ended or expired; sign in again with your API key")
        if row.key.revoked_at is not None:
            raise Unauthenticated(f"the key {row.key.name!r} of this session was revoked; sign in with a new key")
        return SignedIn(_record(row.key), row.csrf_token, _utc(row.expires_at))

    def sign_out(self, token: str) -> KeyRecord | None:
        """End the session of this token (audited); None if it was not open."""
        with self.records.end_session(token_hash=key_digest(token)) as row:
            if row is None:
                return None
            self.audit.append(row.key.name, "session.end", row.key.name)
            return _record(row.key)

    def list(self, *, include_revoked: bool = True) -> builtins.list[KeyRecord]:
        """Keys, oldest first."""
        return [_record(row) for row in self.records.list(include_revoked=include_revoked)]
