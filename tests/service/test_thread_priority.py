"""Photo scans yield the CPU to frames: the photo workers and their session's threads run at a lower priority."""

from __future__ import annotations

import os
import threading

import pytest

from hazardvision.access import Role
from hazardvision.service.thread_priority import at_lower_priority, lower_this_thread
from tests.conftest import test_photos
from tests.service.conftest import live_server

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are Linux's")


def nice_of(native_id: int) -> int:
    """A thread's nice value, read from /proc (field 19 of its stat line)."""
    with open(f"/proc/self/task/{native_id}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])


def threads_of(prefix: str) -> list[int]:
    return [t.native_id for t in threading.enumerate() if t.name.startswith(prefix) and t.native_id is not None]


def test_lower_this_thread_and_threads_started_at_lower_priority():
    def started_here() -> tuple[int, int]:
        child: list[int] = []
        thread = threading.Thread(target=lambda: child.append(nice_of(threading.get_native_id())))
        thread.start()
        thread.join()
        return nice_of(threading.get_native_id()), child[0]

    base = nice_of(threading.get_native_id())
    assert at_lower_priority(7, started_here) == (base + 7, base + 7)  # a thread inherits its creator's
    assert nice_of(threading.get_native_id()) == base  # the caller's own is left alone
    assert at_lower_priority(0, started_here) == (base, base)


def test_at_lower_priority_raises_the_work_s_error():
    def fails() -> None:
        raise ValueError("bad model")

    with pytest.raises(ValueError, match="bad model"):
        at_lower_priority(5, fails)


def test_lower_this_thread_by_zero_changes_nothing():
    base = nice_of(threading.get_native_id())
    lower_this_thread(0)
    assert nice_of(threading.get_native_id()) == base


def test_service_photo_threads_run_lower_than_frame_threads(tmp_path, datasets):
    """Through a real server: after a photo scan and a frame, every photo worker and the threads of the photo
    scans' session run 10 lower than the frame workers and the frames' session."""
    base = nice_of(threading.get_native_id())
    before = set(os.listdir("/proc/self/task"))
    with live_server(tmp_path, frame_workers=1) as server, server.client(Role.PIPELINE) as pipeline:
        photo = test_photos("ppe-vest")[0].read_bytes()
        assert pipeline.post("/v1/scans", files={"image": ("p.jpg", photo)}).status_code == 200
        answer = pipeline.post("/v1/cameras/gate-1/frames", files={"image": ("f.jpg", photo)},
                               params={"timestamp": 1000.0})
        assert answer.status_code == 200, answer.text
        photo_workers, frame_workers = threads_of("hazardvision-inference"), threads_of("hazardvision-frames")
        assert photo_workers and frame_workers
        assert {nice_of(t) for t in photo_workers} == {base + 10}
        assert {nice_of(t) for t in frame_workers} == {base}
        started = {int(t) for t in set(os.listdir("/proc/self/task")) - before}
        nices = {nice_of(t) for t in started}
        # onnxruntime's own pool threads are not Python threads: both priorities are among them
        assert nices == {base, base + 10}
