"""`create_database_engine`: SQLite with the bank's pragmas, PostgreSQL through psycopg 3, anything else refused."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import text

from hazardvision.data.engine import create_database_engine, database_url
from hazardvision.errors import BankError


@pytest.mark.parametrize("url", ["postgres://u:p@db/bank", "postgresql://u:p@db/bank",
                                 "postgresql+psycopg://u:p@db/bank"])
def test_engine_postgres_urls_use_psycopg(url):
    assert database_url(url).drivername == "postgresql+psycopg"
    engine = create_database_engine(url)  # no connection yet: the server need not exist
    assert engine.dialect.driver == "psycopg" and engine.pool._pre_ping


def test_engine_sqlite_gets_wal_full_sync_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'bank.sqlite3'}")
    with engine.connect() as connection:
        pragmas = [connection.execute(text(f"PRAGMA {name}")).scalar()
                   for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")]
    engine.dispose()
    assert pragmas == ["wal", 2, 1, 30000]


@pytest.mark.parametrize("url", ["mysql://root@localhost/bank", "::"])
def test_engine_other_databases_are_refused_with_what_runs(url):
    with pytest.raises(BankError, match=r"sqlite:///PATH.*postgresql://USER:PASSWORD@HOST/DATABASE"):
        create_database_engine(url)


def test_engine_other_postgres_drivers_are_refused_with_the_url_to_write():
    with pytest.raises(BankError, match=r"'psycopg2'.*psycopg 3.*postgresql://USER"):
        create_database_engine("postgresql+psycopg2://u@db/bank")


def test_engine_postgres_without_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(BankError, match=r"pip install 'psycopg\[binary\]>=3.1'"):
        create_database_engine("postgresql://u@db/bank")
