"""`CameraEpochs`: a camera's deletion or reset is counted in the database, with the change, for every process."""

from __future__ import annotations

import threading

import pytest

from hazardvision.data.camera_epochs import CameraEpochs
from hazardvision.data.cameras import Cameras
from hazardvision.data.database import Database
from hazardvision.data.generations import Generations, Kind
from hazardvision.home import Home


@pytest.fixture
def database(tmp_path, database_url) -> Database:
    (tmp_path / "home").mkdir()
    return Database(database_url, Home.at(tmp_path / "home"))


def test_camera_epochs_each_start_over_takes_the_next_cameras_generation(database):
    epochs = CameraEpochs(database)
    assert epochs.since(0) == {}
    assert [epochs.start_over(camera_id=c) for c in ("gate-1", "gate-2", "gate-1")] == [1, 2, 3]
    assert Generations(database).read()[Kind.CAMERAS] == 3
    assert epochs.since(0) == {"gate-1": 3, "gate-2": 2}
    assert epochs.since(2) == {"gate-1": 3}
    assert epochs.since(3) == {}


def test_camera_epochs_a_start_over_commits_with_the_change_it_announces(database):
    epochs = CameraEpochs(database)
    with pytest.raises(RuntimeError), database.session():
        epochs.start_over(camera_id="gate-1")
        raise RuntimeError("the deletion failed")
    assert epochs.since(0) == {} and Generations(database).read()[Kind.CAMERAS] == 0


def test_camera_epochs_start_overs_from_threads_each_get_their_own_epoch(database):
    epochs = CameraEpochs(database)
    given: list[int] = []
    threads = [threading.Thread(target=lambda: given.extend(epochs.start_over(camera_id="gate-1") for _ in range(5)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(given) == list(range(1, 16))
    assert epochs.since(0) == {"gate-1": 15}


@pytest.mark.parametrize("configured", [True, False])
def test_camera_epochs_are_read_with_a_camera_s_settings(database, configured):
    cameras = Cameras(database)
    if configured:
        with cameras.configure(camera_id="gate-1", webhook_url=None, webhook_secret=None, rule={"min_frames": 3},
                               tiling="on"):
            pass
    row, epoch = cameras.opening(camera_id="gate-1")
    assert epoch == 0 and (row is not None) is configured
    CameraEpochs(database).start_over(camera_id="gate-1")
    CameraEpochs(database).start_over(camera_id="gate-2")
    row, epoch = cameras.opening(camera_id="gate-1")
    assert epoch == 1
    if configured:
        assert row is not None and (row.rule, row.tiling) == ({"min_frames": 3}, "on")
    else:
        assert row is None
    assert cameras.opening(camera_id="gate-3") == (None, 0)
