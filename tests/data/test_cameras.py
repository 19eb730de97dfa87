"""`Cameras`: a camera's settings, and its alerts newest first."""

from __future__ import annotations

import datetime as dt

import pytest

from hazardvision.data.cameras import Cameras
from hazardvision.data.database import Database
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
