"""Schema migrations: a bank made by an older hazardvision opens, keeps its cases and gains the new tables."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.bank_records import Annotation, Base, Case, Image, Origin, Source
from hazardvision.data.camera_epochs import CameraEpochs
from hazardvision.data.cameras import Cameras
from hazardvision.data.cases import NewAnnotation
from hazardvision.data.engine import create_database_engine
from hazardvision.data.image_store import ImageStore
from hazardvision.data.labels import CaseLabels
from hazardvision.data.migrations import LATEST, MIGRATIONS

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL

# Added by migrations 2 and 3, those that refer to them (9 and 10: a v1 bank cannot hold them), and 13.
LATER_TABLES = {"api_keys", "scans", "findings", "reviews", "cameras", "alerts", "inspections", "inspection_scans",
                "rectifications", "web_sessions", "webhook_failures"}


def make_v1_bank(home: Path, url: str) -> int:
    """A bank as hazardvision with schema version 1 left it, holding one annotated case; return its id."""
    home.mkdir()
    photo = b"photo bytes"
    sha = hashlib.sha256(photo).hexdigest()
    ImageStore(home / "images").put(sha, "JPEG", photo)
    engine = create_database_engine(url)
    with engine.begin() as connection:
        Base.metadata.create_all(connection,
                                 tables=[t for t in Base.metadata.sorted_tables if t.name not in LATER_TABLES])
        connection.execute(text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                                "description TEXT NOT NULL, applied_at TEXT DEFAULT CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO schema_version (version, description) VALUES (1, 'initial schema')"))
    with Session(engine) as session, session.begin():
        source = Source(name="site-photos", kind="dataset", origin="made here", licence="CC BY 4.0")
        session.add_all([source, Image(sha256=sha, width=640, height=480, format="JPEG", size_bytes=1000,
                                       dhash=1, dhash_bilinear=2)])
        session.flush()
        case = Case(image_sha256=sha, source_id=source.id, source_file="images/train/photo000.jpg",
                    source_split="train", description="scaffold without guard rail")
        case.annotations.append(Annotation(class_name="helmet", source_class="hard_hat", x1=1, y1=2, x2=30, y2=40))
        session.add(case)
        session.flush()
        case_id = case.id
    engine.dispose()
    return case_id


def tables_and_indexes(url: str) -> dict[str, set[str]]:
    engine = create_database_engine(url)
    try:
        inspector = inspect(engine)
        return {t: {i["name"] for i in inspector.get_indexes(t)} for t in inspector.get_table_names()}
    finally:
        engine.dispose()


def test_migrations_upgrade_a_v1_bank_to_the_latest_with_its_cases(tmp_path, database_url):
    home = tmp_path / "bank"
    case_id = make_v1_bank(home, database_url)
    before = tables_and_indexes(database_url)
    assert "api_keys" not in before

    bank = SampleBank(home)
    after = tables_and_indexes(database_url)
    assert set(after) - set(before) == LATER_TABLES  # the migrations add only the new tables
    assert {t: after[t] for t in before} == before
    assert bank.stats().schema_version == LATEST == len(MIGRATIONS)
    case = bank.case(case_id)
    assert (case.source, case.source_file, case.description) == ("site-photos", "images/train/photo000.jpg",
                                                                 "scaffold without guard rail")
    assert [(a.class_name, a.box) for a in case.annotations] == [("helmet", (1, 2, 30, 40))]
    assert bank.verify() == []

    keys = ApiKeys(bank)
    _, key = keys.create("root", Role.ADMIN)
    assert SampleBank(home).stats().schema_version == LATEST  # opening it again migrates nothing
    assert ApiKeys(SampleBank(home)).authenticate(key).name == "root"


def test_migrations_stamp_a_new_bank_with_every_version(tmp_path, database_url):
    bank = SampleBank(tmp_path)
    with bank.engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    assert versions == list(range(1, LATEST + 1))
    assert "uq_api_keys_active_name" in tables_and_indexes(database_url)["api_keys"]


def test_migrations_step_by_step_from_v1_give_the_schema_of_a_new_bank(tmp_path, database_url, second_database_url):
    # Each migration on its own, in order, from a version-1 bank, ends with the tables, columns and
    # indexes a new bank gets in one step (here compared with a second database of the same kind).
    make_v1_bank(tmp_path / "old", database_url)
    engine = create_database_engine(database_url)
    with engine.begin() as connection:
        for migration in MIGRATIONS[1:]:
            migration.apply(connection)
    migrated = schema_of(database_url)
    engine.dispose()
    SampleBank(tmp_path / "new", url=second_database_url).engine.dispose()
    assert migrated == schema_of(second_database_url)


def test_migrations_on_several_machines_at_once_create_the_schema_once(tmp_path, database_url):
    # Separate homes stand for separate machines: no file lock is shared, only the database.
    if not database_url.startswith("postgresql"):
        pytest.skip("a SQLite file is never shared between machines; its home's file lock covers one machine")
    errors: list[BaseException] = []

    def open_bank(index: int) -> None:
        try:
            SampleBank(tmp_path / f"machine-{index}").engine.dispose()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=open_bank, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    engine.dispose()
    assert versions == list(range(1, LATEST + 1))


def test_migration_4_adds_alert_kinds_and_camera_tiling_to_a_version_3_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 3 bank: without the two columns
        connection.execute(text("ALTER TABLE alerts DROP COLUMN kind"))
        connection.execute(text("ALTER TABLE cameras DROP COLUMN tiling"))
        connection.execute(text("INSERT INTO alerts (id, camera_id, class_name, tracker_id, first_seen, raised_at, "
                                "frames, x1, y1, x2, y2, confidence, image_sha256, model_versions, created_at) VALUES "
                                "('a1', 'gate', 'no_helmet', 1, 0, 1, 5, 0, 0, 1, 1, 0.9, 'x', '{}', '2026-01-01')"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 4"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    with upgraded.engine.connect() as connection:
        assert connection.execute(text("SELECT kind FROM alerts")).scalars().all() == ["hazard"]
        assert connection.execute(text("SELECT count(tiling) FROM cameras")).scalar() == 0


def schema_of(url: str) -> dict[str, object]:
    """Every table's columns (name, type, nullability) and indexes, as the database reports them."""
    engine = create_database_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)),
                sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)),
                sorted(str(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            )
            for table in inspector.get_table_names() if table != "schema_version"
        }
    finally:
        engine.dispose()



@pytest.fixture
def second_database_url(database_url, tmp_path, request) -> Iterator[str]:
    """Another fresh database of the same kind as `database_url`."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'second.sqlite3'}"
        return
    with request.getfixturevalue("postgres_server").database() as url:
        yield url


@pytest.mark.usefixtures("database_url")
def test_migration_7_adds_idempotency_keys_to_the_scans_of_a_version_6_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 6 bank: scans without the key and its index
        connection.execute(text("DROP INDEX ix_scans_actor_idempotency_key"))
        connection.execute(text("ALTER TABLE scans DROP COLUMN idempotency_key"))
        connection.execute(text("INSERT INTO scans (id, created_at, actor, source, image_sha256, image_format, result, "
                                "model_versions) VALUES ('s1', '2026-01-01', 'dock-3', 'a.jpg', 'x', 'JPEG', '{}', "
                                "'{}')"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 7"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    insert = text("INSERT INTO scans (id, created_at, actor, source, image_sha256, image_format, result, "
                  "model_versions, idempotency_key) VALUES (:id, '2026-01-02', 'dock-3', 'b.jpg', 'y', 'JPEG', '{}', "
                  "'{}', 'k-1')")
    with upgraded.engine.begin() as connection:
        assert connection.execute(text("SELECT idempotency_key FROM scans")).scalars().all() == [None]
        connection.execute(insert, {"id": "s2"})
    with pytest.raises(IntegrityError), upgraded.engine.begin() as connection:  # the unique index is in place
        connection.execute(insert, {"id": "s3"})
    upgraded.close()


@pytest.mark.usefixtures("database_url")
def test_migration_13_adds_verdicts_to_the_alerts_and_the_webhook_failures_of_a_version_12_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 12 bank: alerts without verdicts, no failures table
        connection.execute(text("DROP INDEX ix_alerts_verdict"))
        for column in ("verdict", "verdict_at", "verdict_by", "verdict_note"):
            connection.execute(text(f"ALTER TABLE alerts DROP COLUMN {column}"))
        connection.execute(text("DROP TABLE webhook_failures"))
        connection.execute(text("INSERT INTO alerts (id, kind, camera_id, class_name, tracker_id, first_seen, "
                                "raised_at, frames, x1, y1, x2, y2, confidence, image_sha256, model_versions, "
                                "created_at) "
                                "VALUES "
                                "('a1', 'hazard', 'dock-3', 'fire', 1, 0, 1, 3, 0, 0, 1, 1, 0.9, 'x', '{}', "
                                "'2026-01-01')"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 13"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    with upgraded.engine.begin() as connection:
        assert connection.execute(text("SELECT verdict, verdict_by FROM alerts")).all() == [(None, None)]
        assert connection.execute(text("SELECT count(*) FROM webhook_failures")).scalar() == 0
    url = upgraded.engine.url.render_as_string(hide_password=False)
    assert "ix_alerts_verdict" in tables_and_indexes(url)["alerts"]
    upgraded.close()


@pytest.mark.usefixtures("database_url")
def test_migration_14_adds_stored_photo_hashes_and_deletions_to_the_scans_of_a_version_13_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 13 bank: scans without the two columns
        for index in ("ix_scans_stored_sha256", "ix_scans_deleted_at"):
            connection.execute(text(f"DROP INDEX {index}"))
        for column in ("stored_sha256", "deleted_at"):
            connection.execute(text(f"ALTER TABLE scans DROP COLUMN {column}"))
        connection.execute(text("INSERT INTO scans (id, created_at, actor, source, image_sha256, image_format, result, "
                                "model_versions) VALUES ('s1', '2026-01-01', 'dock-3', 'a.jpg', 'x', 'JPEG', '{}', "
                                "'{}')"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 14"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    with upgraded.engine.begin() as connection:
        assert connection.execute(text("SELECT stored_sha256, deleted_at FROM scans")).all() == [(None, None)]
    url = upgraded.engine.url.render_as_string(hide_password=False)
    assert {"ix_scans_stored_sha256", "ix_scans_deleted_at"} <= tables_and_indexes(url)["scans"]
    upgraded.close()


def test_migration_16_adds_label_versions_and_a_version_15_bank_s_cases_are_at_version_1(tmp_path, database_url):
    case_id = make_v1_bank(tmp_path / "bank", database_url)
    bank = SampleBank(tmp_path / "bank")
    with bank.engine.begin() as connection:  # make it a version 15 bank: no label versions
        connection.execute(text("DROP TABLE label_versions"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 16"))
    bank.close()
    upgraded = SampleBank(tmp_path / "bank")
    assert upgraded.stats().schema_version == LATEST
    labels = CaseLabels(upgraded.database)
    (first,) = labels.history(case_id=case_id)
    assert (first.version, first.via, [label.class_name for label in first.labels]) == (1, "recorded", ["helmet"])
    with upgraded.writer():
        version = labels.correct(case_id=case_id, author="li.wei", via="relabel", reason="a bare head",
                                 labels=[NewAnnotation("no_helmet", (1, 2, 30, 40), Origin.CORRECTED.value)])
    assert version == 2 and [v.version for v in labels.history(case_id=case_id)] == [1, 2]
    assert [a.class_name for a in upgraded.case(case_id).annotations] == ["no_helmet"]
    upgraded.close()


def test_migration_20_adds_camera_epochs_and_a_version_19_bank_s_cameras_start_at_epoch_0(tmp_path, database_url):
    bank = SampleBank(tmp_path / "bank", url=database_url)
    with Cameras(bank.database).configure(camera_id="gate-1", webhook_url=None, webhook_secret=None,
                                          rule={"min_frames": 3}, tiling=None):
        pass
    with bank.engine.begin() as connection:  # make it a version 19 bank: no camera epochs
        connection.execute(text("DROP TABLE camera_epochs"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 20"))
    bank.close()
    upgraded = SampleBank(tmp_path / "bank", url=database_url)
    assert upgraded.stats().schema_version == LATEST
    cameras = Cameras(upgraded.database)
    row, epoch = cameras.opening(camera_id="gate-1")
    assert row is not None and row.rule == {"min_frames": 3} and epoch == 0
    assert CameraEpochs(upgraded.database).start_over(camera_id="gate-1") == 1
    assert cameras.opening(camera_id="gate-1")[1] == 1
    upgraded.close()


def test_migration_19_adds_video_purges_and_audit_anchoring_to_a_version_18_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 18 bank: neither column, no camera epochs
        connection.execute(text("ALTER TABLE video_jobs DROP COLUMN files_purged_at"))
        connection.execute(text("ALTER TABLE audit_head DROP COLUMN anchored_at"))
        connection.execute(text("INSERT INTO audit_head (id, count, head, mac) VALUES (1, 0, :zero, '')"),
                           {"zero": "0" * 64})
        connection.execute(text("DROP TABLE camera_epochs"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 19"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    with upgraded.engine.begin() as connection:
        assert connection.execute(text("SELECT anchored_at FROM audit_head")).all() == [(None,)]
        assert connection.execute(text("SELECT count(files_purged_at) FROM video_jobs")).scalar_one() == 0
    upgraded.close()
