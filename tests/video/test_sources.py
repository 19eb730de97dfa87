"""Video sources: files (whole, truncated, not a video), folders of frames, and which stream URLs may be read."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hazardvision.errors import StreamRefused, VideoDamaged, VideoError
from hazardvision.video.sources import FrameFolder, LiveStream, StreamPolicy, VideoFile, open_source
from tests.conftest import test_photos
from tests.video.footage import clip_frames, shots, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory, datasets) -> Path:
    """Three seconds at 10 fps of one real photo, panning with noise, in Matroska."""
    folder = tmp_path_factory.mktemp("clip")
    plan = shots(test_photos("ppe-vest")[:1], 3.0)
    return write_clip(folder / "clip.mkv", clip_frames(plan, fps=10, size=(320, 180)), fps=10)


def test_video_file_reads_every_frame_at_its_presentation_time(clip):
    video = VideoFile(clip)
    frames = list(video.frames())
    assert len(frames) == 30
    assert video.duration == pytest.approx(3.0, abs=0.15)
    times = [frame.timestamp for frame in frames]
    assert times == sorted(times)
    assert times[1] - times[0] == pytest.approx(0.1, abs=1e-3)
    assert frames[-1].timestamp == pytest.approx(2.9, abs=1e-3)
    assert frames[0].pixels().shape == (180, 320, 3)
    assert frames[0].grey(32, 18).shape == (18, 32)


def test_video_file_cut_short_yields_its_frames_then_says_it_is_truncated(clip, tmp_path):
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    frames = []
    with pytest.raises(VideoDamaged, match="truncated"):
        frames.extend(VideoFile(cut).frames())
    assert 5 <= len(frames) < 30


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_video_file_refuses_what_is_not_a_video(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="not a video"):
        VideoFile(path)


def test_open_source_refuses_unknown_suffixes_and_missing_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VideoError, match="not a video file"):
        open_source(str(tmp_path / "notes.txt"))
    with pytest.raises(VideoError, match="no such video"):
        open_source(str(tmp_path / "missing.mp4"))


def test_frame_folder_reads_photos_in_name_order_at_its_rate(tmp_path):
    for index in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"frame{index}.png"), np.full((20, 30, 3), index * 50, np.uint8))
    (tmp_path / "readme.txt").write_text("not a frame")
    folder = FrameFolder(tmp_path, fps=4.0)
    frames = list(folder.frames())
    assert [frame.timestamp for frame in frames] == [0.0, 0.25, 0.5]
    assert [int(frame.pixels()[0, 0, 0]) for frame in frames] == [0, 50, 100]
    assert folder.duration == 0.75


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/passwd", "not"),
    ("ftp://192.168.1.5/cam", "not"),
    ("rtsp:///no-host", "names no host"),
    ("http://169.254.169.254/latest/meta-data", "outside the networks"),
    ("rtsp://8.8.8.8/stream", "outside the networks"),
])
def test_stream_policy_refuses_local_paths_other_schemes_and_outside_hosts(url, message):
    with pytest.raises(StreamRefused, match=message):
        StreamPolicy.of(["10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/16"]).check(url)


def test_stream_policy_allows_private_networks_and_an_administrators_choice(monkeypatch):
    StreamPolicy.from_environment().check("rtsp://user:secret@127.0.0.1:8554/cam")
    StreamPolicy.from_environment().check("http://192.168.1.20/video.mjpg")
    monkeypatch.setenv("HAZARDVISION_STREAM_NETWORKS", "8.8.8.0/24")
    StreamPolicy.from_environment().check("rtsp://8.8.8.8/stream")
    with pytest.raises(StreamRefused):
        StreamPolicy.from_environment().check("rtsp://127.0.0.1/stream")
    monkeypatch.setenv("HAZARDVISION_STREAM_NETWORKS", "not-a-network")
    with pytest.raises(StreamRefused, match="not a network"):
        StreamPolicy.from_environment()


def test_live_stream_hides_the_password_of_its_url():
    stream = LiveStream("rtsp://user:secret@127.0.0.1:9/cam", open_timeout=0.5, read_timeout=0.5, backoff=(5, 5))
    try:
        assert "secret" not in stream.name and "user" not in stream.name
    finally:
        stream.close()
    assert stream.status.state == "closed"
    assert stream.status.last_error is not None and "secret" not in stream.status.last_error
