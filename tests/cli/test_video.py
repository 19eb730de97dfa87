"""`hazardvision scan-video`, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import pytest

from tests.conftest import test_photos
from tests.video.footage import Shot, clip_frames, write_clip

SCRIPT = Path(sys.executable).with_name("hazardvision")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, datasets) -> Path:
    """Six seconds: a fire-smoke photo, then a covered lens."""
    plan = [Shot(test_photos("fire-smoke")[5], 0.0, 3.0), Shot(None, 3.0, 3.0)]
    return write_clip(tmp_path_factory.mktemp("cli-video") / "site.mp4",
                      clip_frames(plan, fps=10, size=(480, 360)), fps=10)


def test_scan_video_json_lists_events_with_their_best_frames_and_an_annotated_copy(clip, tmp_path):
    done = run("scan-video", str(clip), "--json", "--events-dir", str(tmp_path / "events"), "--blur-people",
               "--annotated", str(tmp_path / "annotated.mp4"), "--max-gap", "0.5")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["frames_decoded"] == 60
    assert report["frames_analysed"] + report["skipped_by_rate"] + report["skipped_by_motion"] == 60
    assert report["error"] is None and report["realtime_factor"] > 0
    kinds = {event["kind"] for event in report["events"]}
    assert "camera" in kinds
    for event in report["events"]:
        assert 0 <= event["start"] <= event["end"] <= 6.0
        if event["kind"] == "hazard":
            assert event["hazard"]["severity"] and cv2.imread(event["snapshot"]) is not None
    with av.open(str(tmp_path / "annotated.mp4")) as written:
        frames = sum(1 for _ in written.decode(video=0))
    assert frames == report["frames_analysed"]


def test_scan_video_prints_a_table_and_its_figures(clip):
    done = run("scan-video", str(clip), "--fps", "2", "--max-gap", "0.5")
    assert done.returncode == 0, done.stderr
    assert "frames analysed" in done.stdout and "real time" in done.stdout
    assert "view_obstructed" in done.stdout


def test_scan_video_of_a_damaged_file_reports_what_it_found_and_exits_1(clip, tmp_path):
    shots = [Shot(test_photos("fire-smoke")[5], 0.0, 6.0)]
    whole = write_clip(tmp_path / "whole.mkv", clip_frames(shots, fps=10, size=(320, 240)), fps=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    done = run("scan-video", str(cut), "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]
    assert "truncated" in done.stderr


@pytest.mark.parametrize(("source", "message"), [
    ("missing.mp4", "no such video"),
    ("notes.txt", "not a video file"),
    ("file:///etc/passwd", "stream URLs are"),
    ("http://169.254.169.254/latest", "outside the networks"),
])
def test_scan_video_refuses_bad_sources_in_one_line(source, message, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    done = subprocess.run([str(SCRIPT), "scan-video", source], capture_output=True, text=True, timeout=120,
                          check=False, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
