"""`hazardvision scan-video`: hazard events in a video file, a folder of frames or a live stream."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hazardvision.catalogue import load_catalogue
from hazardvision.cli.common import HomeOption, err, fail
from hazardvision.detections import Detections
from hazardvision.errors import HazardVisionError
from hazardvision.images import BGRImage
from hazardvision.packs.card import Precision
from hazardvision.packs.model_pack import ModelPack, detect_with_packs
from hazardvision.packs.registry import active_packs, resolve_model
from hazardvision.packs.tiling import VIDEO_FILE_TILING, tiling_mode
from hazardvision.video.events import folder_writer
from hazardvision.video.scanning import VideoReport, VideoScanSettings, scan_source
from hazardvision.video.sources import VideoFrame, open_source
from hazardvision.video.writer import AnnotatedVideo


def scan_video_command(
    source: Annotated[str, typer.Argument(help="Video file (mp4, avi, mkv, mov), folder of frames, or stream URL "
                                         "(rtsp, rtsps, http, https).")],
    fps: Annotated[float, typer.Option(min=0.1, max=120, help="Frames analysed per second of video at most.")] = 5.0,
    motion: Annotated[bool, typer.Option(help="Skip frames that barely differ from the last analysed one.")] = True,
    max_gap: Annotated[float, typer.Option(min=0.1, help="Seconds after which a frame is analysed even "
                                           "without motion.")] = 2.0,
    min_frames: Annotated[int, typer.Option(min=1, help="Analysed frames a hazard must be seen in to become "
                                            "an event.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events and figures as one JSON object.")] = False,
    events_dir: Annotated[Path | None, typer.Option(help="Save each event's best frame as DIR/<event id>.jpg.")
                          ] = None,
    blur_people: Annotated[bool, typer.Option(help="Blur people (and what they wear) in saved frames.")] = False,
    annotated: Annotated[Path | None, typer.Option(help="Write the analysed frames with their tracked hazards "
                                                   "drawn as a video (e.g. OUT.mp4).")] = None,
    folder_fps: Annotated[float, typer.Option(min=0.01, help="Frame rate of a folder of frames.")] = 1.0,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after this many seconds of video "
                                                   "(a stream runs until Ctrl-C otherwise).")] = None,
    model: Annotated[list[Path] | None, typer.Option("--model", help="ONNX file or model pack folder; repeat for "
                                                     "several. Default: the active packs.")] = None,
    precision: Annotated[Precision | None, typer.Option(help="float32 or int8. Default: each pack's.")] = None,
    tiling: Annotated[str, typer.Option(help="on, off or auto. Default: off, whole frames (auto looks at large "
                                        "frames in tiles too, as photo scans do: smaller, farther hazards, about "
                                        "a tenth of the speed on 1080p).")] = VIDEO_FILE_TILING,
    catalogue: Annotated[Path | None, typer.Option(help="Hazard catalogue YAML. Default: the bundled one.")] = None,
    home: HomeOption = None,
) -> None:
    """Find hazard events in a video: one per tracked hazard, with start, end and best frame.

    Exit code 1 when the video is damaged part-way (the events before the damage are reported).
    """
    try:
        mode = tiling_mode(tiling)
        packs: list[ModelPack] = ([resolve_model(m, precision) for m in model] if model
                                  else active_packs(precision, home=home))
        chosen = load_catalogue(catalogue)
        for pack in packs:
            chosen.require(pack.card.classes, f"model pack {pack.name} {pack.version}")
        video = open_source(source, folder_fps=folder_fps)
    except HazardVisionError as error:
        fail(error)
    scan = VideoScanSettings(fps=fps, motion=motion, max_gap=max_gap, min_frames=min_frames, blur_people=blur_people)

    def detect(pixels: BGRImage, weak: float) -> Detections:
        return detect_with_packs(packs, [pixels], weak=weak, tiling=mode)[0]

    total = duration or video.duration
    with ExitStack() as stack:
        writer = stack.enter_context(AnnotatedVideo(annotated, chosen)) if annotated else None
        bar = stack.enter_context(Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                           TextColumn("{task.completed:.0f}/{task.total:.0f} s" if total else
                                                      "{task.completed:.0f} s"),
                                           TextColumn("{task.fields[events]} events"), TimeElapsedColumn(),
                                           TimeRemainingColumn(), console=err, transient=as_json))
        task = bar.add_task(f"scanning {video.name}", total=total, events=0)

        def on_progress(seconds: float, events: int) -> None:
            bar.update(task, completed=min(seconds, total) if total else seconds, events=events)

        def on_frame(frame: VideoFrame, tracked: Detections) -> None:
            if writer is not None:
                writer.write(frame, tracked)

        try:
            report = scan_source(video, detect, chosen, scan, snapshots=folder_writer(events_dir) if events_dir
                                 else None, progress=on_progress, on_frame=on_frame, max_seconds=duration)
        except KeyboardInterrupt:
            video.close()
            err.print("stopped")
            raise typer.Exit(130) from None
        except HazardVisionError as error:
            fail(error)
    if as_json:
        print(json.dumps(_as_json(report)))
    else:
        _print_report(report)
    if report.error:
        err.print(f"[red]error:[/red] {report.error}", highlight=False)
        raise typer.Exit(1)


def _as_json(report: VideoReport) -> dict[str, object]:
    return {
        "source": report.source, "events": [event.model_dump(mode="json") for event in report.events],
        "frames_decoded": report.frames_decoded, "frames_analysed": report.frames_analysed,
        "skipped_by_rate": report.skipped_by_rate, "skipped_by_motion": report.skipped_by_motion,
        "flickers": report.flickers, "video_seconds": round(report.video_seconds, 3),
        "wall_seconds": round(report.wall_seconds, 3), "realtime_factor": round(report.realtime_factor, 3),
        "error": report.error,
    }


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def _print_report(report: VideoReport) -> None:
    console = Console(file=sys.stdout, width=max(Console().width, 100))
    summary = (f"{len(report.events)} event(s); {report.frames_analysed} of {report.frames_decoded} frames analysed "
               f"({report.skipped_by_rate} skipped by rate, {report.skipped_by_motion} by the motion gate); "
               f"{report.video_seconds:.1f} s of video in {report.wall_seconds:.1f} s "
               f"({report.realtime_factor:.2f}x real time)")
    if not report.events:
        console.print(f"{report.source}: no hazard events\n{summary}", highlight=False)
        return
    table = Table(title=report.source)
    for column in ("event", "start", "end", "class", "severity", "frames", "peak", "best at"):
        table.add_column(column, no_wrap=True)
    for event in report.events:
        table.add_row(event.event_id[:8], _clock(event.start), _clock(event.end), event.class_name,
                      event.hazard.severity.value if event.hazard else "camera", str(event.frames),
                      f"{event.peak_confidence:.2f}" if event.peak_confidence is not None else "",
                      _clock(event.best_frame_time) if event.best_frame_time is not None else "")
    console.print(table)
    if any(event.snapshot for event in report.events):
        folder = Path(next(e.snapshot for e in report.events if e.snapshot)).parent
        console.print(f"best frames in {folder}", highlight=False)
    console.print(summary, highlight=False)
