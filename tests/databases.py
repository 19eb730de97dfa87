"""The databases the data-layer tests run on: a SQLite file, and a fresh PostgreSQL database per test.

PostgreSQL comes from `HAZARDVISION_TEST_POSTGRES`, an admin URL (a role that may create databases),
for example `postgresql://hazardvision:hazardvision@127.0.0.1/postgres`; `.ci/run` starts one and sets
it. Without it the PostgreSQL cases skip, except under `CI=true`, where they fail: CI must not pass
by testing one database only. At the end, the run says how many tests ran on each database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from hazardvision.data.engine import database_url as parse_database_url

POSTGRES_ENV = "HAZARDVISION_TEST_POSTGRES"
DATABASES = ("sqlite", "postgresql")
_ran: Counter[str] = Counter()


class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = parse_database_url(admin_url)
        self.engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE needs it

    def check(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def create(self) -> str:
        """A new, empty database; its URL."""
        name = f"hazardvision_test_{uuid.uuid4().hex[:12]}"
        with self.engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str, attempts: int = 10) -> None:
        """Drop a database made by `create`, closing what is still connected to it. An autovacuum worker
        (the superuser's) analysing the new tables cannot be terminated by a role without pg_signal_backend:
        the drop is tried again until it has gone (`.ci/run` grants that role, so there it never waits)."""
        name = make_url(url).database
        for attempt in range(attempts):
            try:
                with self.engine.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                return
            except ProgrammingError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)

    @contextmanager
    def database(self) -> Iterator[str]:
        url = self.create()
        try:
            yield url
        finally:
            self.drop(url)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The test PostgreSQL server; skips (fails under CI=true) when none is configured or reachable."""
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        _unavailable(f"no PostgreSQL to test on: set {POSTGRES_ENV} to an admin URL such as "
                     "postgresql://USER:PASSWORD@127.0.0.1/postgres (.ci/run starts one)")
    server = PostgresServer(str(admin_url))
    try:
        server.check()
    except SQLAlchemyError as error:
        _unavailable(f"cannot reach PostgreSQL at {server.admin_url.render_as_string(hide_password=True)}: "
                     f"{getattr(error, 'orig', None) or error}")
    yield server
    server.engine.dispose()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database of each kind; also set as HAZARDVISION_DATABASE_URL, so that every bank
    the test opens (and a service it starts) uses it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'database.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("HAZARDVISION_DATABASE_URL", url)
    return str(url)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "database(name): the test runs on this database (for the summary)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    callspec = getattr(item, "callspec", None)
    database = callspec.params.get("database_url") if callspec else None
    marker = item.get_closest_marker("database")
    database = database or (marker.args[0] if marker else None)
    if database:
        item.user_properties.append(("database", database))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # user_properties travel with the report, so this also counts tests run by xdist workers.
    database = dict(report.user_properties).get("database")
    if database and report.when == "call":
        _ran[str(database)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _ran or os.environ.get(POSTGRES_ENV):
        counts = ", ".join(f"{_ran[name]} on {name}" for name in DATABASES)
        terminalreporter.write_line(f"database tests run: {counts}")
