"""Schemas of /v1/videos: video upload jobs, their progress and the hazard events they found."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.results import HazardInfo
from hazardvision.service.schemas.cameras import CAMERA_PATTERN

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoFields(_Schema):
    """What an upload may say about its video (form fields, or query parameters of a raw body)."""

    camera: str | None = Field(default=None, pattern=CAMERA_PATTERN, description="The camera that filmed it "
                               "(its events' camera; default: the file name).")
    site: str | None = Field(default=None, min_length=1, max_length=200, description="Site the video shows.")
    enterprise: str | None = Field(default=None, min_length=1, max_length=200, description="Enterprise of the site.")
    fps: float | None = Field(default=None, gt=0, le=120, description="Frames analysed per second of video at most "
                              "(default: the service's video_fps setting).")


class VideoQuery(VideoFields):
    filename: str | None = Field(default=None, min_length=1, max_length=255, description="Name of a raw video/* "
                                 "body (its suffix says the container: .mp4, .avi, .mkv, .mov).")


class VideoProgress(_Schema):
    frames_read: int = Field(description="Frames decoded so far.")
    frames_analysed: int = Field(description="Frames the detector looked at so far (rate target and motion gate "
                                 "skip the others).")
    video_seconds: float = Field(description="Seconds of the video read so far.")
    duration: float | None = Field(description="Seconds of video in all, from its header.")
    percent: float | None = Field(description="video_seconds of duration, 0 to 100.")
    eta_seconds: float | None = Field(description="Estimated seconds until the job is done, from its pace so far.")


class VideoEvent(_Schema):
    """One hazard (or camera) event of the video."""

    number: int = Field(description="The event's number in the job, from 1 (the order events ended).")
    event_id: str = Field(description="Unique id of the event.")
    kind: Literal["hazard", "camera"] = Field(description="hazard: a tracked hazard; camera: the picture was "
                                              "obstructed, lost or frozen.")
    camera: str = Field(description="The camera or video the event comes from.")
    class_name: str = Field(description="Catalogue class of the hazard, or the frame status of a camera event.")
    tracker_id: int | None = Field(description="The hazard's track (null for a camera event).")
    start: float = Field(description="Seconds into the video of the first frame that saw it.")
    end: float = Field(description="Seconds of the last frame that saw it.")
    frames: int = Field(description="Analysed frames that saw it.")
    peak_confidence: float | None = Field(description="Highest detector confidence (null for a camera event).")
    box: tuple[float, float, float, float] | None = Field(description="The hazard's box in its best frame (x1, y1, "
                                                          "x2, y2, pixels).")
    best_frame_time: float | None = Field(description="Seconds of the best frame.")
    hazard: HazardInfo | None = Field(description="What the catalogue says about the hazard: code, names, severity, "
                                      "rules, advice (null for a camera event).")
    reason: str | None = Field(default=None, description="Why the picture was judged lost (camera events).")
    snapshot_url: str | None = Field(description="The best frame as JPEG, the hazard boxed (null for a camera event, "
                                     "and once the job's files were purged past the retention period).")


class VideoJob(_Schema):
    """A video upload job: where it stands, and what it found so far."""

    job_id: str = Field(description="The job's id.")
    status: JobStatus = Field(description="queued, running, done, failed or cancelled.")
    filename: str = Field(description="The uploaded file's name.")
    size_bytes: int = Field(description="Size of the uploaded file.")
    owner: str = Field(description="Name of the API key that uploaded it.")
    camera: str | None = Field(description="The camera it was filmed by, if the upload said.")
    site: str | None = Field(description="The site, if the upload said.")
    enterprise: str | None = Field(description="The enterprise, if the upload said.")
    fps: float = Field(description="Frames analysed per second of video at most.")
    created_at: dt.datetime = Field(description="When it was uploaded (UTC).")
    started_at: dt.datetime | None = Field(description="When its (last) run started.")
    finished_at: dt.datetime | None = Field(description="When it ended (done, failed or cancelled).")
    attempts: int = Field(description="Runs started: more than one when a restart of the service resumed it (from "
                          "the start of the video).")
    progress: VideoProgress = Field(description="How far the analysis has come, and how long it may take yet.")
    error: str | None = Field(description="Why it failed; for a damaged video, where reading stopped (the events "
                              "before the damage are kept).")
    models: dict[str, str] = Field(description="Pack name -> version that analysed it.")
    files_purged_at: dt.datetime | None = Field(default=None, description="When the video file and its events' best "
                                                "frames were deleted past the retention period (the job and its "
                                                "events stay); null while they are kept.")
    event_count: int = Field(description="Events found so far.")
    events: list[VideoEvent] = Field(description="The events found so far (empty in a list of jobs).")


class VideoJobList(_Schema):
    jobs: list[VideoJob] = Field(description="Jobs, newest first (without their events).")


class VideoJobCreated(_Schema):
    job_id: str = Field(description="The job's id.")
    status: JobStatus = Field(description="queued: it runs in the background.")
    url: str = Field(description="Where its status, progress and events are: GET this URL.")
