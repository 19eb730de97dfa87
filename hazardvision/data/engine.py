"""One engine factory for the databases the data layer runs on: SQLite (a home's file) and PostgreSQL.

Everything that differs between the two at connection level lives here, so the rest of the data
layer writes the same SQLAlchemy against either.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from hazardvision.errors import BankError

POSTGRES_DRIVER = "postgresql+psycopg"
_POSTGRES_SCHEMES = {"postgres", "postgresql", POSTGRES_DRIVER}
_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_INSTALL = "pip install 'psycopg[binary]>=3.1'"


def database_url(url: str) -> URL:
    """`url` parsed, with `postgres://` and `postgresql://` mapped onto psycopg 3 (the driver we ship with)."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise BankError(f"the database URL {url!r} cannot be read: {error}; set HAZARDVISION_DATABASE_URL to "
                        "sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE") from error
    if parsed.drivername in _POSTGRES_SCHEMES:
        return parsed.set(drivername=POSTGRES_DRIVER)
    if parsed.drivername in _SQLITE_SCHEMES:
        return parsed
    if parsed.get_backend_name() == "postgresql":
        raise BankError(f"the database URL names the driver {parsed.get_driver_name()!r}; hazardvision talks to "
                        "PostgreSQL through psycopg 3: write the URL as postgresql://USER:PASSWORD@HOST/DATABASE")
    raise BankError(f"the database URL {parsed.render_as_string(hide_password=True)!r} names "
                    f"{parsed.drivername!r}; hazardvision runs on SQLite (sqlite:///PATH) or PostgreSQL "
                    "(postgresql://USER:PASSWORD@HOST/DATABASE)")


def create_database_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, set up as the bank needs it."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise BankError(f"PostgreSQL needs the psycopg 3 driver, which is not installed: {_POSTGRES_INSTALL}")
        # A server restart or an idle timeout drops pooled connections; test each before use.
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL lets readers work during an import; FULL sync makes each commit survive a crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
