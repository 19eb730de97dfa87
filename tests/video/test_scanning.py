"""A video of real photos in, hazard events out: the events match what the video shows, and when."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazardvision.catalogue import load_catalogue
from hazardvision.images import load_image
from hazardvision.packs.model_pack import detect_with_packs
from hazardvision.scan import Scanner
from hazardvision.video.events import EventBuilder
from hazardvision.video.scanning import scan_video
from hazardvision.video.selection import FrameSelector, SelectionSettings
from hazardvision.video.sources import VideoFile
from hazardvision.video.tracking import Tracker, TrackerSettings
from tests.conftest import test_photos
from tests.video.footage import Shot, clip_frames, write_clip

SECONDS = 4.0
FPS = 10
SIZE = (480, 360)


def _photo_showing(packs, dataset: str, class_name: str) -> Path:
    """A test photo of `dataset` on which the packs find `class_name` as a still photo."""
    scanner = Scanner(packs, load_catalogue())
    for photo in test_photos(dataset)[:40]:
        result = scanner.scan([load_image(photo)], [photo.name])[0]
        if any(f.class_name == class_name for f in result.findings):
            return photo
    pytest.fail(f"none of the first 40 {dataset} test photos shows {class_name} to the packs")


@pytest.fixture(scope="module")
def plan(packs, datasets, tmp_path_factory) -> tuple[list[Shot], Path]:
    fire = _photo_showing(packs, "fire-smoke", "fire")
    shots = [Shot(fire, 0.0, SECONDS), Shot(None, SECONDS, SECONDS), Shot(fire, 2 * SECONDS, SECONDS)]
    video = write_clip(tmp_path_factory.mktemp("video") / "site.mkv",
                       clip_frames(shots, fps=FPS, size=SIZE, noise=2.0), fps=FPS)
    return shots, video


def _scan(packs, video: Path, **selection):
    tracker = Tracker(TrackerSettings(max_age_seconds=2.0))
    builder = EventBuilder(load_catalogue(), "test", min_frames=3, end_after=2.0)

    def detect(pixels):
        return detect_with_packs(packs, [pixels], weak=0.1)[0]

    return scan_video(VideoFile(video), detect, builder, tracker=tracker,
                      selector=FrameSelector(SelectionSettings(**selection)))


def test_scan_video_finds_the_fire_in_each_shot_and_the_covered_lens_between(packs, plan):
    shots, video = plan
    report = _scan(packs, video, fps=5.0, max_gap=1.0)
    fires = [e for e in report.events if e.class_name == "fire"]
    assert len(fires) >= 2, report.events
    for shot in (shots[0], shots[2]):
        inside = [e for e in fires if shot.start - 0.01 <= e.start and e.end <= shot.end]
        assert inside, f"no fire event within {shot.start}-{shot.end} s: {fires}"
        assert max(e.end - e.start for e in inside) >= SECONDS / 2
    assert not [e for e in report.events if e.kind == "hazard" and shots[1].start + 0.5 < e.start < shots[1].end]
    [camera] = [e for e in report.events if e.kind == "camera"]
    assert camera.class_name == "view_obstructed"
    assert shots[1].start <= camera.start < shots[1].start + 0.5 and camera.end <= shots[1].end
    assert report.error is None
    assert report.frames_decoded == 3 * SECONDS * FPS
    assert report.frames_analysed + report.skipped_by_rate + report.skipped_by_motion == report.frames_decoded


def test_scan_video_of_a_truncated_file_keeps_the_events_before_the_damage(packs, plan, tmp_path):
    shots, video = plan
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.45)])
    report = _scan(packs, cut, fps=5.0, max_gap=1.0)
    assert report.error is not None and "truncated" in report.error
    assert any(e.class_name == "fire" and e.end <= shots[0].end for e in report.events)
