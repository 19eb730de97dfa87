"""`Database`: the engine, its sessions, the schema at open, and the writer lock of one home folder.

Every other module of the data layer reaches the database through one of these; nothing outside
the data layer sees a session.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from hazardvision.data.audit_records import AUDITED
from hazardvision.data.engine import create_database_engine
from hazardvision.data.migrations import migrate, schema_version
from hazardvision.errors import BankError, UnknownHome
from hazardvision.home import Home, private_file, private_folder, private_opener

__all__ = ["COMMIT_CHECK", "Database", "Engine", "database_errors"]

DATABASE_URL_VARIABLE = "HAZARDVISION_DATABASE_URL"

_OPEN: ContextVar[tuple[Engine, Session] | None] = ContextVar("hazardvision_open_session", default=None)
"""The innermost session `Database.session()` has open in this thread or task, and its engine."""

COMMIT_CHECK: ContextVar[Callable[[bool], None] | None] = ContextVar("hazardvision_commit_check", default=None)
"""Called before a session that wrote commits, in its transaction, with whether it holds an audited action;
what it raises rolls the writes back. The service sets it per request: work still running past the request's
deadline (answered 503) keeps nothing."""
_WROTE = "hazardvision_wrote"


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not state.is_select:  # an UPDATE or DELETE statement; an INSERT
        state.session.info[_WROTE] = True


@contextmanager
def database_errors() -> Iterator[None]:
    """Database failures (locked, full disk, unreachable server) as a `BankError` a user can read."""
    try:
        yield
    except (OperationalError, DatabaseError) as error:
        raise BankError(f"the bank database failed: {getattr(error, 'orig', None) or error}") from error


class Database:
    """The bank database at `url`, its schema brought to the latest version on open.

    `home` holds the locks: the schema lock (two processes opening a new bank at once must not
    both create its tables) and the writer lock (one process adds or deletes cases at a time).
    """

    def __init__(self, url: str, home: Home) -> None:
        self.home = home
        self.engine: Engine = create_database_engine(url)
        with open(home.schema_lock, "a+b", opener=private_opener) as handle, database_errors():
            fcntl.flock(handle, fcntl.LOCK_EX)
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error; records stay readable after it.

        While it is open, `open_session()` on this thread returns it, so that what must commit with
        an action (its audit record) joins the action's transaction.
        """
        with database_errors(), Session(self.engine, expire_on_commit=False) as session, session.begin():
            token = _OPEN.set((self.engine, session))
            try:
                yield session
                check = COMMIT_CHECK.get()
                if check is not None:
                    session.flush()
                    if session.info.get(_WROTE):
                        check(bool(session.info.get(AUDITED)))
            finally:
                _OPEN.reset(token)

    def open_session(self) -> Session | None:
        """The transaction of this database open on this thread, if any (see `session`)."""
        current = _OPEN.get()
        return current[1] if current is not None and current[0] is self.engine else None

    @property
    def url(self) -> str:
        """The database's URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def writer(self, *, wait: bool = True) -> Iterator[bool]:
        """The right to add or delete cases: one writer at a time, waiting for the one at work unless
        not `wait`; yields whether it was granted (always True when waiting).

        The lock is an flock on `home/.writer.lock`, so the kernel releases it when a writer dies.
        """
        with open(self.home.writer_lock, "a+b", opener=private_opener) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def schema_version(self) -> int:
        with database_errors(), self.engine.connect() as connection:
            return schema_version(connection)

    @classmethod
    def of_home(cls, home: Path | None = None, *, url: str | None = None, create: bool = True) -> Database:
        """The database of a home: `url`, else $HAZARDVISION_DATABASE_URL, else the home's SQLite file.

        With `create` false, a home folder that does not exist (or, on SQLite, holds no bank file) is an
        `UnknownHome` instead of a new, empty bank: what checks of an existing bank want.
        """
        layout = Home.at(home)
        url = url or os.environ.get(DATABASE_URL_VARIABLE)
        if not create:
            _require_existing(layout, sqlite=url is None)
        try:
            private_folder(layout.root)
            if url is None and not layout.database.exists():
                os.close(private_file(layout.database, exclusive=True))  # SQLite's -wal and -shm take its mode
        except FileExistsError:
            pass  # another process created the database meanwhile
        except OSError as error:
            raise BankError(f"cannot create the bank folder {layout.root}: {error.strerror}") from error
        return cls(url or layout.sqlite_url, layout)

    def dispose(self) -> None:
        """Close the pooled connections (a process that forks, or a test that reopens the bank)."""
        self.engine.dispose()


def _require_existing(layout: Home, *, sqlite: bool) -> None:
    if not layout.root.is_dir():
        raise UnknownHome(f"no hazardvision home at {layout.root}: the folder does not exist; pass --home (or set "
                          "HAZARDVISION_HOME) to the folder of an existing bank")
    if sqlite and not layout.database.is_file() and not layout.audit.is_dir():  # audit/ alone: a home of old
        raise UnknownHome(f"{layout.root} holds no bank ({layout.database.name} is missing); pass --home (or set "
                          "HAZARDVISION_HOME) to the folder of an existing bank, or set HAZARDVISION_DATABASE_URL "
                          "to its database")
