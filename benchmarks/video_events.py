"""Video scanning: share of frames analysed, real-time factor and event recall, with and without frame selection.

Builds a 1920x1080, 30 fps clip of test-split photos in which the active packs find a hazard as
still photos (each shot held for --shot seconds, panning
slowly, with fresh sensor noise on every frame and a block crossing the picture for a third of
every second, so that the motion gate cannot skip a still slideshow), then scans it with the
active packs three ways in one process:
  every frame   no rate target, no motion gate: the reference events
  fps only      at most --fps frames a second
  fps + motion  the default: rate target and motion gate (max gap --max-gap s)
and prints, per way, frames analysed, video seconds per wall second, and event recall against the
reference (a reference event is found when an event of its class overlaps it in time).

    python benchmarks/video_events.py --seconds 60 --shot 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.video.footage builds the clip

from hazardvision.catalogue import load_catalogue
from hazardvision.detections import Detections
from hazardvision.images import BGRImage, load_image
from hazardvision.packs.model_pack import detect_with_packs
from hazardvision.packs.registry import active_packs
from hazardvision.packs.tiling import MODES, VIDEO_FILE_TILING, TilingMode
from hazardvision.resources import default_datasets
from hazardvision.scan import Scanner
from hazardvision.video.events import EventBuilder, HazardEvent
from hazardvision.video.scanning import VideoReport, scan_video
from hazardvision.video.selection import FrameSelector, SelectionSettings
from hazardvision.video.sources import VideoFile
from hazardvision.video.tracking import Tracker, TrackerSettings
from tests.video.footage import Shot, clip_frames, write_clip

SIZE = (1920, 1080)
FPS = 30
DATASETS = ("ppe-vest", "fire-smoke", "hardhat-head", "forklift-person")


def with_mover(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """A 60x120 block crossing the picture during the first third of every second."""
    for index, frame in enumerate(frames):
        phase = index % FPS
        if phase < FPS // 3:
            x = 100 + phase * 40
            frame[800:920, x:x + 60] = (30, 30, 200)
        yield frame


def hazard_photos(count: int) -> list[Path]:
    """Test photos in which the active packs find a hazard as a still photo, taken in turn from each dataset:
    the clip then holds hazards the detector can see, and recall measures the video path, not the detector."""
    scanner = Scanner(active_packs(), load_catalogue())
    root = default_datasets()
    per_dataset = [sorted((root / name / "images" / "test").iterdir()) for name in DATASETS]
    chosen: list[Path] = []
    for index in range(60):
        for photos in per_dataset:
            if len(chosen) < count and index < len(photos):
                result = scanner.scan([load_image(photos[index])], [photos[index].name])[0]
                if result.findings:
                    chosen.append(photos[index])
    return chosen


def build_clip(folder: Path, seconds: float, shot: float) -> Path:
    shots = int(seconds // shot)
    photos = hazard_photos(shots)
    plan = [Shot(photos[i % len(photos)], i * shot, shot) for i in range(shots)]
    return write_clip(folder / "clip.mp4", with_mover(clip_frames(plan, fps=FPS, size=SIZE, noise=3.0, pan=12.0)),
                      fps=FPS)


def scan(path: Path, settings: SelectionSettings, tiling: TilingMode) -> VideoReport:
    packs = active_packs()
    keep = max(1.0, 2 * settings.max_gap, 3.0 / (settings.fps or FPS))
    tracker = Tracker(TrackerSettings(max_age_seconds=keep))
    builder = EventBuilder(load_catalogue(), path.name, min_frames=3, end_after=keep)

    def detect(pixels: BGRImage) -> Detections:
        return detect_with_packs(packs, [pixels], weak=tracker.settings.low_threshold, tiling=tiling)[0]

    return scan_video(VideoFile(path), detect, builder, tracker=tracker, selector=FrameSelector(settings))


def recall(reference: list[HazardEvent], found: list[HazardEvent]) -> float:
    hazards = [e for e in reference if e.kind == "hazard"]
    if not hazards:
        return float("nan")
    hit = sum(any(f.class_name == e.class_name and f.start <= e.end and e.start <= f.end for f in found)
              for e in hazards)
    return hit / len(hazards)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--shot", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--max-gap", type=float, default=2.0)
    parser.add_argument("--clip", type=Path, help="Scan this clip instead of building one.")
    parser.add_argument("--tiling", choices=MODES, default=VIDEO_FILE_TILING,
                        help=f"tiling of every way (default {VIDEO_FILE_TILING}, what scan-video and video jobs use)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = args.clip or build_clip(Path(folder), args.seconds, args.shot)
        print(f"clip {path.name}: {SIZE[0]}x{SIZE[1]} at {FPS} fps, built in {time.perf_counter() - start:.0f} s; "
              f"packs {', '.join(f'{p.name} {p.version} {p.precision.value}' for p in active_packs())}; "
              f"tiling {args.tiling}")
        ways = {
            "every frame": SelectionSettings(fps=None, motion=False, max_gap=args.max_gap),
            "fps only": SelectionSettings(fps=args.fps, motion=False, max_gap=args.max_gap),
            "fps + motion": SelectionSettings(fps=args.fps, motion=True, max_gap=args.max_gap),
        }
        reports = {name: scan(path, settings, args.tiling) for name, settings in ways.items()}
    reference = reports["every frame"].events
    for name, report in reports.items():
        print(f"{name}: " + "; ".join(f"{e.class_name} {e.start:.1f}-{e.end:.1f} s ({e.frames} frames, peak "
                                      f"{e.peak_confidence or 0:.2f})" for e in report.events if e.kind == "hazard"))
    print(f"{'way':<14} {'analysed':>10} {'share':>7} {'wall s':>8} {'x real time':>12} {'events':>7} {'recall':>7}")
    for name, report in reports.items():
        print(f"{name:<14} {report.frames_analysed:>10} {report.analysed_share:>7.3f} {report.wall_seconds:>8.1f} "
              f"{report.realtime_factor:>12.2f} {len(report.events):>7} {recall(reference, report.events):>7.3f}")


if __name__ == "__main__":
    main()
