"""One process reads each camera stream: the lease row (taken once, renewed, lost when it expires) on SQLite and
PostgreSQL, and two `hazardvision serve` processes on one PostgreSQL database reading a loopback stream once."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import pytest

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.stream_leases import ReaderState, StreamLeases
from tests.conftest import test_photos
from tests.databases import PostgresServer
from tests.service.conftest import eventually
from tests.service.test_processes import serve, wait_ready
from tests.video.mjpeg import noisy_frames, serving


def test_stream_leases_one_holder_at_a_time_until_its_lease_expires(tmp_path, database_url):
    bank = SampleBank(tmp_path / "home", url=database_url)
    leases = StreamLeases(bank.database)
    assert leases.take(camera_id="cam-1", holder="a", seconds=0.5)
    assert not leases.take(camera_id="cam-1", holder="b", seconds=0.5)
    assert leases.take(camera_id="cam-1", holder="a", seconds=0.5, state=ReaderState(state="live", frames_read=7))
    row = leases.current()["cam-1"]
    assert (row.holder, row.state, row.frames_read) == ("a", "live", 7)
    time.sleep(0.7)  # a stopped renewing
    assert leases.take(camera_id="cam-1", holder="b", seconds=5)
    assert not leases.take(camera_id="cam-1", holder="a", seconds=5)
    leases.release(camera_id="cam-1", holder="a")  # not a's any more: nothing happens
    assert leases.current()["cam-1"].holder == "b"
    leases.release(camera_id="cam-1", holder="b")
    assert leases.take(camera_id="cam-1", holder="a", seconds=5)
    leases.drop(camera_id="cam-1")
    assert leases.current() == {}
    bank.close()


@pytest.mark.database("postgresql")
def test_stream_leases_two_processes_read_a_stream_once_and_the_other_takes_over(
        tmp_path, postgres_server: PostgresServer, datasets, monkeypatch):
    monkeypatch.setenv("HAZARDVISION_STREAM_NETWORKS", "127.0.0.0/8")  # the admin's setting: loopback cameras
    monkeypatch.setenv("HAZARDVISION_STREAM_LEASE_SECONDS", "2")
    monkeypatch.setenv("HAZARDVISION_SIMILAR_CASES", "0")
    with postgres_server.database() as url, serving(noisy_frames(test_photos("ppe-vest")[0], 10, size=(320, 240)),
                                                    fps=10) as camera, ExitStack() as stack:
        home = tmp_path / "home"
        bank = SampleBank(home, url=url)
        key = ApiKeys(bank).create("test-pipeline", Role.PIPELINE)[1]
        bank.close()
        headers = {"Authorization": f"Bearer {key}"}
        first = ExitStack()
        stack.enter_context(first)
        a = first.enter_context(serve(home, url))
        wait_ready(a)
        put = httpx.put(f"{a}/v1/cameras/shared-1", json={"stream_url": camera.url}, headers=headers, timeout=60)
        assert put.status_code == 200, put.text

        def stream(server: str) -> dict:
            return httpx.get(f"{server}/v1/cameras/shared-1", headers=headers, timeout=60).json()["stream"]

        holder = eventually(lambda: stream(a)["state"] == "live" and stream(a)["reader"], 30)
        b = stack.enter_context(serve(home, url))
        wait_ready(b)
        time.sleep(1.5)  # several renewals of the lease: b sees it held and reads nothing
        assert stream(b)["reader"] == holder and stream(b)["state"] == "live"
        assert camera.connections == 1 and camera.open_connections == 1

        first.close()  # a stops and gives its lease up: b takes the stream over
        taken = eventually(lambda: (s := stream(b))["state"] == "live" and s["reader"] != holder and s, 30)
        assert taken["reader"] and camera.connections == 2
        eventually(lambda: camera.open_connections == 1, 10)
