"""`Cameras`: a camera's settings, and its alerts newest first."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from hazardvision.bank.bank import SampleBank
from hazardvision.data.cameras import Cameras
from hazardvision.data.database import Database
from hazardvision.data.migrations import LATEST
from hazardvision.home import Home
from hazardvision.video.alerts import Alert


@pytest.fixture
def cameras(tmp_path, database_url) -> Cameras:
    (tmp_path / "home").mkdir()
    return Cameras(Database(database_url, Home.at(tmp_path / "home")))


def alert(alert_id: str, camera_id: str = "gate-1") -> Alert:
    return Alert(alert_id=alert_id, camera_id=camera_id, class_name="no_helmet", tracker_id=3, first_seen=1.0,
                 raised_at=2.5, frames=4, box=(1.0, 2.0, 30.0, 40.0), confidence=0.8)


def test_cameras_configure_then_get_and_reconfigure(cameras):
    assert cameras.get(camera_id="gate-1") is None
    with cameras.configure(camera_id="gate-1", webhook_url="https://example.test/hook", webhook_secret="s3",
                           rule={"min_frames": 3}, tiling="on") as row:
        assert row.id == "gate-1"
    with cameras.configure(camera_id="gate-1", webhook_url=None, webhook_secret=None, rule={"min_frames": 5},
                           tiling=None):
        pass
    found = cameras.get(camera_id="gate-1")
    assert found is not None and (found.webhook_url, found.rule, found.tiling) == (None, {"min_frames": 5}, None)


def test_cameras_alerts_newest_first_per_camera(cameras):
    with cameras.add_alerts(alerts=[alert("a1"), alert("a2", "gate-2")], image_sha256="0" * 64,
                            model_versions={"ppe": "0.2.1"}):
        pass
    with cameras.add_alerts(alerts=[alert("a3")], image_sha256="1" * 64, model_versions={}):
        pass
    assert cameras.alerts()[0].id == "a3"
    assert [row.id for row in cameras.alerts(camera_id="gate-1")] == ["a3", "a1"]
    first = cameras.alerts(camera_id="gate-2")[0]
    assert (first.kind, first.class_name, first.x2, first.model_versions) == ("hazard", "no_helmet", 30.0,
                                                                              {"ppe": "0.2.1"})
    assert cameras.alerts(since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []
    assert len(cameras.alerts(limit=1, offset=1)) == 1


def test_cameras_alerts_are_not_kept_when_the_work_inside_fails(cameras):
    with pytest.raises(RuntimeError), cameras.add_alerts(alerts=[alert("a1")], image_sha256="0" * 64,
                                                         model_versions={}):
        raise RuntimeError("the audit log cannot be written")
    assert cameras.alerts() == []


def test_cameras_lists_configured_cameras_and_those_that_alerted(cameras):
    with cameras.configure(camera_id="gate-2", webhook_url=None, webhook_secret=None, rule={}, tiling=None):
        pass
    with cameras.add_alerts(alerts=[alert("a1", "dock-9")], image_sha256="0" * 64, model_versions={}):
        pass
    assert [row.id for row in cameras.configured()] == ["gate-2"]
    assert cameras.with_alerts() == {"dock-9"}


def test_cameras_acknowledge_once_then_report_it_was_already(cameras):
    with cameras.add_alerts(alerts=[alert("a1"), alert("a2")], image_sha256="0" * 64, model_versions={},
                            image_format="JPEG"):
        pass
    at = dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC)
    with cameras.acknowledge(alert_id="a1", actor="ops-7", note="helmet handed out", at=at) as (row, now):
        assert row is not None and now
    with cameras.acknowledge(alert_id="a1", actor="ops-8", note=None, at=at + dt.timedelta(hours=1)) as (row, now):
        assert row is not None and not now
        assert (row.acknowledged_by, row.acknowledged_at, row.ack_note) == ("ops-7", at, "helmet handed out")
    with cameras.acknowledge(alert_id="nope", actor="ops-7", note=None, at=at) as (row, now):
        assert row is None and not now
    assert [row.id for row in cameras.alerts(acknowledged=True)] == ["a1"]
    assert [row.id for row in cameras.alerts(acknowledged=False)] == ["a2"]
    found = cameras.alert(alert_id="a2")
    assert found is not None and found.image_format == "JPEG"


def test_cameras_acknowledgement_is_undone_when_the_work_inside_fails(cameras):
    with cameras.add_alerts(alerts=[alert("a1")], image_sha256="0" * 64, model_versions={}):
        pass
    with pytest.raises(RuntimeError), cameras.acknowledge(alert_id="a1", actor="ops-7", note=None,
                                                          at=dt.datetime.now(dt.UTC)):
        raise RuntimeError("the audit log cannot be written")
    assert [row.id for row in cameras.alerts(acknowledged=False)] == ["a1"]


@pytest.mark.usefixtures("database_url")
def test_migration_6_adds_acknowledgements_and_frames_to_a_version_5_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 5 bank: without the four columns
        for column in ("image_format", "acknowledged_at", "acknowledged_by", "ack_note"):
            connection.execute(text(f"ALTER TABLE alerts DROP COLUMN {column}"))
        connection.execute(text("INSERT INTO alerts (id, kind, camera_id, class_name, tracker_id, first_seen, "
                                "raised_at, frames, x1, y1, x2, y2, confidence, image_sha256, model_versions, "
                                "created_at) VALUES ('a1', 'hazard', 'gate', 'no_helmet', 1, 0, 1, 5, 0, 0, 1, 1, 0.9, "
                                "'x', '{}', '2026-01-01')"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 6"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    old = Cameras(upgraded.database).alert(alert_id="a1")
    assert old is not None and (old.image_format, old.acknowledged_at, old.acknowledged_by) == (None, None, None)
    with Cameras(upgraded.database).acknowledge(alert_id="a1", actor="ops", note="seen",
                                                at=dt.datetime.now(dt.UTC)) as (_row, now):
        assert now


def test_cameras_webhook_secrets_are_encrypted_at_rest_with_a_key_file_of_mode_600(cameras, tmp_path):
    with cameras.configure(camera_id="gate-1", webhook_url="https://example.test/hook",
                           webhook_secret="a-long-shared-secret", rule={}, tiling=None):
        pass
    with cameras.database.session() as session:
        stored = session.execute(text("SELECT webhook_secret FROM cameras WHERE id = 'gate-1'")).scalar_one()
    assert stored.startswith("fernet:") and "a-long-shared-secret" not in stored
    row = cameras.get(camera_id="gate-1")
    assert row is not None and cameras.secret(row) == "a-long-shared-secret"
    key = tmp_path / "home" / "keys" / "webhook.key"
    assert key.stat().st_mode & 0o777 == 0o600 and key.parent.stat().st_mode & 0o777 == 0o700
    assert [path.name for path in key.parent.iterdir()] == ["webhook.key"]  # no temporary file left


def test_cameras_secrets_stored_in_clear_before_are_sealed_and_still_read(cameras):
    with cameras.configure(camera_id="old-1", webhook_url="https://example.test/hook", webhook_secret="x",
                           rule={}, tiling=None):
        pass
    with cameras.database.session() as session:  # as an older hazardvision stored it
        session.execute(text("UPDATE cameras SET webhook_secret = 'stored-in-clear-before' WHERE id = 'old-1'"))
    row = cameras.get(camera_id="old-1")
    assert row is not None and cameras.secret(row) == "stored-in-clear-before"
    assert cameras.seal_clear() == 1
    assert cameras.seal_clear() == 0
    row = cameras.get(camera_id="old-1")
    assert row is not None and row.webhook_secret is not None and row.webhook_secret.startswith("fernet:")
    assert cameras.secret(row) == "stored-in-clear-before"


def test_cameras_keep_the_owner_of_their_first_configuration(cameras):
    with cameras.configure(camera_id="gate-1", webhook_url=None, webhook_secret=None, rule={}, tiling=None,
                           owner="pipeline-a") as row:
        assert row.owner == "pipeline-a"
    with cameras.configure(camera_id="gate-1", webhook_url=None, webhook_secret=None, rule={}, tiling=None,
                           owner="admin-1") as row:
        assert row.owner == "pipeline-a"
    found = cameras.get(camera_id="gate-1")
    assert found is not None and found.owner == "pipeline-a"


@pytest.mark.usefixtures("database_url")
def test_migration_11_adds_camera_owners_to_a_version_10_bank(tmp_path):
    bank = SampleBank(tmp_path)
    with bank.engine.begin() as connection:  # make it a version 10 bank: cameras without owners
        connection.execute(text("ALTER TABLE cameras DROP COLUMN owner"))
        connection.execute(text("INSERT INTO cameras (id, rule, updated_at) VALUES ('gate', '{}', '2026-01-01')"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 11"))
    bank.engine.dispose()
    upgraded = SampleBank(tmp_path)
    assert upgraded.stats().schema_version == LATEST
    old = Cameras(upgraded.database).get(camera_id="gate")
    assert old is not None and old.owner is None
