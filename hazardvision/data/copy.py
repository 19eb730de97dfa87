"""Copy a home's SQLite bank, every table of it, into another database (PostgreSQL, typically).

The photos stay where they are, in the home's images folder: only the database moves. The target
must be empty; it is migrated to the latest schema first, filled in one transaction (a failure
leaves it empty again), its id sequences are moved past the copied ids, and each table's row count
is checked against the source at the end.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text
from sqlalchemy.exc import DatabaseError, OperationalError

from hazardvision.data.base import Base
from hazardvision.data.engine import create_database_engine, database_url
from hazardvision.data.migrations import migrate
from hazardvision.errors import BankError
from hazardvision.home import Home

DEFAULT_BATCH = 1000

CopyStarted = Callable[[dict[str, int]], None]
"""Called once with the number of rows of each table to copy, in copy order."""
CopyProgress = Callable[[str, int], None]
"""Called with a table's name and the number of rows just copied."""


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: the target (password hidden) and the rows copied per table."""

    target: str
    rows: dict[str, int]


def tables() -> list[Table]:
    """Every table of the bank and the service, parents before children."""
    return list(Base.metadata.sorted_tables)


def copy_bank(
    home: Path | None, target_url: str, *, batch_size: int = DEFAULT_BATCH,
    on_start: CopyStarted | None = None, on_progress: CopyProgress | None = None,
) -> CopyReport:
    """Copy the SQLite bank of `home` into the empty database at `target_url`."""
    layout = Home.at(home)
    if not layout.database.is_file():
        raise BankError(f"no SQLite bank at {layout.database}; `hazardvision bank copy` copies a home's "
                        "bank.sqlite3 (give its folder with --home)")
    target_name = database_url(target_url).render_as_string(hide_password=True)
    if database_url(target_url) == database_url(layout.sqlite_url):
        raise BankError(f"{target_name} is the bank being copied; give another database with --to")
    source = create_database_engine(layout.sqlite_url)
    target = create_database_engine(target_url)
    try:
        with _errors(target_name), _home_locks(layout):
            migrate(source)
            _refuse_filled(target, target_name)
            migrate(target)
            with source.connect() as reading, target.begin() as writing:
                # One read transaction: every table is copied from the same snapshot of the bank.
                counts = {table.name: _count(reading, table) for table in tables()}
                if on_start:
                    on_start(counts)
                for table in tables():
                    _copy_table(reading, writing, table, batch_size, on_progress)
                if writing.dialect.name == "postgresql":
                    _reset_sequences(writing)
            _check_counts(target, counts, target_name)
    finally:
        source.dispose()
        target.dispose()
    return CopyReport(target=target_name, rows=counts)


@contextmanager
def _home_locks(layout: Home) -> Iterator[None]:
    """The schema lock and the writer lock of the home: no migration and no import during the copy."""
    with open(layout.schema_lock, "a+b") as schema, open(layout.writer_lock, "a+b") as writer:
        fcntl.flock(schema, fcntl.LOCK_EX)
        fcntl.flock(writer, fcntl.LOCK_EX)
        yield


@contextmanager
def _errors(target: str) -> Iterator[None]:
    try:
        yield
    except (OperationalError, DatabaseError) as error:
        raise BankError(f"copying the bank to {target} failed, and the target holds none of it: "
                        f"{getattr(error, 'orig', None) or error}") from error


def _refuse_filled(target: Engine, name: str) -> None:
    with target.connect() as connection:
        existing = set(inspect(connection).get_table_names())
        for table in tables():
            if table.name in existing and connection.execute(select(table).limit(1)).first() is not None:
                raise BankError(f"{name} is not empty (its table {table.name} has rows); copy into a new, "
                                "empty database, for example one made with `createdb`")


def _count(connection: Connection, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _copy_table(reading: Connection, writing: Connection, table: Table, batch_size: int,
                on_progress: CopyProgress | None) -> None:
    rows = reading.execution_options(yield_per=batch_size).execute(select(table).order_by(*table.primary_key))
    for batch in rows.partitions():
        writing.execute(table.insert(), [dict(row._mapping) for row in batch])
        if on_progress:
            on_progress(table.name, len(batch))


def _reset_sequences(connection: Connection) -> None:
    """Move each id sequence past the copied ids; the next row added gets a fresh id."""
    for table in tables():
        column = table.autoincrement_column
        if column is None:
            continue
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence(:table, :column), "  # names from our own metadata
                 f"COALESCE(MAX({column.name}), 0) + 1, false) FROM {table.name}"),
            {"table": table.name, "column": column.name},
        )


def _check_counts(target: Engine, expected: dict[str, int], name: str) -> None:
    with target.connect() as connection:
        found = {table.name: _count(connection, table) for table in tables()}
    wrong = [f"{table}: {found[table]} of {count}" for table, count in expected.items() if found[table] != count]
    if wrong:
        raise BankError(f"the copy in {name} does not hold every row: {'; '.join(wrong)}")
