"""Versioned schema migrations, so that a bank made today opens after an upgrade.

A new bank gets the current schema in one step and is stamped with the latest version. An older
bank runs, in order, every migration above its version. Each migration is a function of a
connection; add one to MIGRATIONS (never edit a released one) whenever the tables change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, text

from hazardvision.data import (  # noqa: F401  (their tables join Base's metadata)
    audit_records,
    bank_records,
    camera_epochs,
    generations,
    inspection_records,
    service_records,
    stream_leases,
    video_records,
    webhook_records,
)
from hazardvision.data.base import Base
from hazardvision.errors import BankError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial(connection: Connection) -> None:
    Base.metadata.create_all(connection)


def _api_keys(connection: Connection) -> None:
    # Only the new table; checkfirst because `_initial` creates every table the schema has today.
    Base.metadata.tables["api_keys"].create(connection, checkfirst=True)


def _service_records(connection: Connection) -> None:
    # Only the new tables, in dependency order; checkfirst for the same reason as `_api_keys`.
    for name in ("scans", "findings", "reviews", "cameras", "alerts"):
        Base.metadata.tables[name].create(connection, checkfirst=True)


def _camera_status_and_tiling(connection: Connection) -> None:
    # Alerts made before camera alerts existed are all hazard alerts; cameras configured before
    # tiling existed use each pack's default. A bank migrated from before version 3 got both tables
    # as they are today (with the columns) from `_service_records`.
    columns = inspect(connection)
    if "kind" not in {column["name"] for column in columns.get_columns("alerts")}:
        connection.execute(text("ALTER TABLE alerts ADD COLUMN kind VARCHAR(20) NOT NULL DEFAULT 'hazard'"))
    if "tiling" not in {column["name"] for column in columns.get_columns("cameras")}:
        connection.execute(text("ALTER TABLE cameras ADD COLUMN tiling VARCHAR(8)"))


def _audit_records(connection: Connection) -> None:
    # The audit chain moves from HOME/audit/audit.jsonl into the database (AuditLog.adopt imports it).
    for name in ("audit_records", "audit_head"):
        Base.metadata.tables[name].create(connection, checkfirst=True)


_ALERT_ACKS = ("image_format", "acknowledged_at", "acknowledged_by", "ack_note")


def _alert_acks_and_frames(connection: Connection) -> None:
    # Alerts raised before this version were never acknowledged and kept no frame: every new
    # column is nullable. A bank that skipped to here through `_service_records` has them already.
    present = {column["name"] for column in inspect(connection).get_columns("alerts")}
    table = Base.metadata.tables["alerts"]
    for name in _ALERT_ACKS:
        if name not in present:
            kind = table.columns[name].type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE alerts ADD COLUMN {name} {kind}"))


def _scan_idempotency_keys(connection: Connection) -> None:
    # Scans made before this version had no Idempotency-Key: the column is nullable, and NULLs never
    # collide in the unique index.
    if "idempotency_key" not in {column["name"] for column in inspect(connection).get_columns("scans")}:
        connection.execute(text("ALTER TABLE scans ADD COLUMN idempotency_key VARCHAR(200)"))
    for index in Base.metadata.tables["scans"].indexes:
        if index.name == "ix_scans_actor_idempotency_key":
            index.create(connection, checkfirst=True)


def _generations(connection: Connection) -> None:
    Base.metadata.tables["generations"].create(connection, checkfirst=True)


def _inspections(connection: Connection) -> None:
    for name in ("inspections", "inspection_scans", "rectifications"):
        Base.metadata.tables[name].create(connection, checkfirst=True)


def _web_sessions(connection: Connection) -> None:
    Base.metadata.tables["web_sessions"].create(connection, checkfirst=True)


def _camera_owners(connection: Connection) -> None:
    # Cameras configured before this version have no owner (null): only an admin changes them.
    if "owner" not in {column["name"] for column in inspect(connection).get_columns("cameras")}:
        connection.execute(text("ALTER TABLE cameras ADD COLUMN owner VARCHAR(100)"))


def _video_jobs(connection: Connection) -> None:
    for name in ("video_jobs", "video_events"):
        Base.metadata.tables[name].create(connection, checkfirst=True)


_ALERT_VERDICTS = ("verdict", "verdict_at", "verdict_by", "verdict_note")


def _verdicts_and_webhook_failures(connection: Connection) -> None:
    # Alerts raised before this version have no verdict (null). A bank that got the alerts table through
    # `_service_records` has the columns already.
    present = {column["name"] for column in inspect(connection).get_columns("alerts")}
    table = Base.metadata.tables["alerts"]
    for name in _ALERT_VERDICTS:
        if name not in present:
            kind = table.columns[name].type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE alerts ADD COLUMN {name} {kind}"))
    for index in table.indexes:
        if index.name == "ix_alerts_verdict":
            index.create(connection, checkfirst=True)
    Base.metadata.tables["webhook_failures"].create(connection, checkfirst=True)


_SCAN_PRIVACY = ("stored_sha256", "deleted_at")


def _scan_privacy(connection: Connection) -> None:
    # Scans before this version kept the bytes uploaded (stored_sha256 null: image_sha256 is the file's) and
    # were never deleted (deleted_at null).
    present = {column["name"] for column in inspect(connection).get_columns("scans")}
    table = Base.metadata.tables["scans"]
    for name in _SCAN_PRIVACY:
        if name not in present:
            kind = table.columns[name].type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE scans ADD COLUMN {name} {kind}"))
    for index in table.indexes:
        if index.name in ("ix_scans_stored_sha256", "ix_scans_deleted_at"):
            index.create(connection, checkfirst=True)


_CAMERA_STREAMS = ("stream_url", "stream_credentials")


def _camera_streams(connection: Connection) -> None:
    # Cameras configured before this version have no stream (null): their frames are sent to the service.
    present = {column["name"] for column in inspect(connection).get_columns("cameras")}
    table = Base.metadata.tables["cameras"]
    for name in _CAMERA_STREAMS:
        if name not in present:
            kind = table.columns[name].type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE cameras ADD COLUMN {name} {kind}"))
    Base.metadata.tables["camera_stream_leases"].create(connection, checkfirst=True)


def _label_versions(connection: Connection) -> None:
    # Cases labelled before this version have no rows: each is at version 1, its labels as recorded.
    Base.metadata.tables["label_versions"].create(connection, checkfirst=True)


def _key_sites(connection: Connection) -> None:
    # Keys made before this version have no sites (null): they read the scans of every site, as before.
    if "sites" not in {column["name"] for column in inspect(connection).get_columns("api_keys")}:
        kind = Base.metadata.tables["api_keys"].columns["sites"].type.compile(dialect=connection.dialect)
        connection.execute(text(f"ALTER TABLE api_keys ADD COLUMN sites {kind}"))


def _alert_senders(connection: Connection) -> None:
    # Who sent an alert's frame was audited (action `alert`, its subject the alert): earlier alerts get it from
    # there, read in one pass (the audit table has no index on subjects); one without such a record keeps null.
    if "actor" in {column["name"] for column in inspect(connection).get_columns("alerts")}:
        return
    connection.execute(text("ALTER TABLE alerts ADD COLUMN actor VARCHAR(100)"))
    senders = [{"id": subject, "actor": actor[:100]} for subject, actor in connection.execute(text(
        "SELECT subject, actor FROM audit_records WHERE action = 'alert' AND subject IS NOT NULL"))]
    for start in range(0, len(senders), 1000):
        connection.execute(text("UPDATE alerts SET actor = :actor WHERE id = :id"), senders[start:start + 1000])


def _camera_epochs(connection: Connection) -> None:
    # Cameras deleted or reset before this version have no epoch: their trackers then lived on in other processes.
    Base.metadata.tables["camera_epochs"].create(connection, checkfirst=True)


def _video_purges_and_audit_anchors(connection: Connection) -> None:
    # Video jobs before this version kept their files (null); audit chains before it were never marked anchored
    # (null): `AuditLog` marks one whose anchor it finds, and anchors one that has none (data.audit).
    for table_name, name in (("video_jobs", "files_purged_at"), ("audit_head", "anchored_at")):
        if name not in {column["name"] for column in inspect(connection).get_columns(table_name)}:
            kind = Base.metadata.tables[table_name].columns[name].type.compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _initial),
    Migration(2, "api keys of the service", _api_keys),
    Migration(3, "scans, findings, reviews, cameras and alerts of the service", _service_records),
    Migration(4, "alert kinds (hazard or camera status) and camera tiling", _camera_status_and_tiling),
    Migration(5, "the audit chain in the database", _audit_records),
    Migration(6, "alert acknowledgements and the frames that raised alerts", _alert_acks_and_frames),
    Migration(7, "Idempotency-Key of scans", _scan_idempotency_keys),
    Migration(8, "generation counters shared by the service processes of one database", _generations),
    Migration(9, "inspections and the rectification of confirmed hazards", _inspections),
    Migration(10, "signed-in sessions of the web page", _web_sessions),
    Migration(11, "the API key that owns each camera", _camera_owners),
    Migration(12, "video upload jobs and their events", _video_jobs),
    Migration(13, "verdicts of alerts, and the webhook deliveries that failed", _verdicts_and_webhook_failures),
    Migration(14, "the SHA-256 of a scan's stored photo (its location removed), and deleted scans", _scan_privacy),
    Migration(15, "camera stream URLs, and the lease of the process that reads each stream", _camera_streams),
    Migration(16, "versions of a case's labels, with their provenance", _label_versions),
    Migration(17, "the sites whose scans an API key reads", _key_sites),
    Migration(18, "the API key that sent each alert's frame", _alert_senders),
    Migration(19, "video files purged past the retention period, and whether the audit chain was ever anchored",
              _video_purges_and_audit_anchors),
    Migration(20, "the epoch of each camera's last deletion or reset, for the trackers of every process",
              _camera_epochs),
)
LATEST = MIGRATIONS[-1].version


def schema_version(connection: Connection) -> int:
    if not inspect(connection).has_table("schema_version"):
        return 0
    row = connection.execute(text("SELECT max(version) FROM schema_version")).scalar()
    return int(row or 0)


SCHEMA_LOCK_KEY = 0x68617A6172647631
"""PostgreSQL advisory lock key of schema changes (the bytes of 'hazardv1'): one per database."""


def lock_schema(connection: Connection) -> None:
    """Make other migrators of the same database wait until this transaction ends.

    On PostgreSQL this is an advisory lock, which holds across machines; SQLite's callers hold the
    home folder's file lock (a SQLite file is never shared between machines).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def migrate(engine: Engine) -> int:
    """Bring the bank's schema to LATEST; return the version it had before."""
    with engine.begin() as connection:
        lock_schema(connection)
        connection.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                                "description TEXT NOT NULL, applied_at TEXT DEFAULT CURRENT_TIMESTAMP)"))
        current = schema_version(connection)
        if current > LATEST:
            raise BankError(
                f"the bank has schema version {current}, newer than this hazardvision knows ({LATEST}); "
                "upgrade hazardvision"
            )
        if current == 0 and not inspect(connection).has_table("cases"):
            Base.metadata.create_all(connection)
            connection.execute(text("INSERT INTO schema_version (version, description) VALUES (:v, :d)"),
                               [{"v": m.version, "d": m.description} for m in MIGRATIONS])
            return 0
        for migration in MIGRATIONS:
            if migration.version > current:
                migration.apply(connection)
                connection.execute(text("INSERT INTO schema_version (version, description) VALUES (:v, :d)"),
                                   {"v": migration.version, "d": migration.description})
        return current
