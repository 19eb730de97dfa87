"""`Keys`: the service's API keys, kept as the SHA-256 of each key."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from hazardvision.data.base import utcnow
from hazardvision.data.database import Database
from hazardvision.data.service_records import ApiKey, WebSession
from hazardvision.errors import ApiKeyConflict


class Keys:
    def __init__(self, database: Database) -> None:
        self.database = database

    @contextmanager
    def create(self, *, name: str, role: str, key_hash: str, prefix: str,
               sites: builtins.list[str] | None = None) -> Iterator[ApiKey]:
        """Add an active key and yield its record inside the transaction (what the caller does there, an
        audit entry, commits with it); `ApiKeyConflict` if an active key has that name."""
        taken = ApiKeyConflict(f"an active key is named {name!r}; revoke it first or choose another name")
        with self.database.session() as session:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))):
                raise taken
            row = ApiKey(name=name, role=role, key_hash=key_hash, prefix=prefix, sites=sites or None)
            session.add(row)
            try:
                session.flush()
            except IntegrityError as error:  # created by another process since the check above
                raise taken from error
            yield row

    @contextmanager
    def revoke(self, *, name: str | None = None, key_id: int | None = None) -> Iterator[ApiKey | None]:
        """Revoke the active key of that name or id and yield it inside the transaction (None if there is
        no such key, and nothing changes)."""
        which = ApiKey.id == key_id if key_id is not None else ApiKey.name == name
        with self.database.session() as session:
            row = session.scalar(select(ApiKey).where(which, ApiKey.revoked_at.is_(None)))
            if row is not None:
                row.revoked_at = utcnow()
                session.flush()
            yield row

    def by_hash(self, *, key_hash: str) -> ApiKey | None:
        """The key (active or revoked) whose SHA-256 this is."""
        with self.database.session() as session:
            return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))

    def mark_used(self, *, key_id: int, at: dt.datetime) -> None:
        with self.database.session() as session:
            row = session.get(ApiKey, key_id)
            if row is not None:
                row.last_used_at = at

    def list(self, *, include_revoked: bool = True) -> builtins.list[ApiKey]:
        """Keys, oldest first."""
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.database.session() as session:
            return builtins.list(session.scalars(query))

    @contextmanager
    def open_session(self, *, key_id: int, token_hash: str, csrf_token: str,
                     expires_at: dt.datetime) -> Iterator[WebSession]:
        """Add a session of the key and yield it inside the transaction (the caller's audit entry commits
        with it)."""
        with self.database.session() as session:
            row = WebSession(token_hash=token_hash, key_id=key_id, csrf_token=csrf_token, created_at=utcnow(),
                             expires_at=expires_at)
            session.add(row)
            session.flush()
            yield row

    def web_session(self, *, token_hash: str) -> WebSession | None:
        """The session (with its key) whose token's SHA-256 this is, ended or not."""
        with self.database.session() as session:
            return session.get(WebSession, token_hash, options=[selectinload(WebSession.key)])

    @contextmanager
    def end_session(self, *, token_hash: str) -> Iterator[WebSession | None]:
        """End the session if it is open and yield it inside the transaction (None if it was not open)."""
        with self.database.session() as session:
            changed = session.execute(
                update(WebSession).where(WebSession.token_hash == token_hash, WebSession.ended_at.is_(None))
                .values(ended_at=utcnow()).execution_options(synchronize_session=False))
            row = session.get(WebSession, token_hash, options=[selectinload(WebSession.key)])
            yield row if getattr(changed, "rowcount", 0) else None
