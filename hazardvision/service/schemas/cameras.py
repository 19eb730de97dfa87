"""Cameras: their alert settings, their frames, and the alerts they raise."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from hazardvision.packs.tiling import TilingMode
from hazardvision.results import Box, HazardInfo, ModelRef, QualityInfo
from hazardvision.service.schemas.common import PlainText, UtcDatetime
from hazardvision.video.alerts import Alert, AlertRule

CAMERA_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"
ALERT_PATTERN = r"^[0-9a-f]{32}$"
MAX_RULE_CLASSES = 64
MAX_TIMESTAMP = 4_102_444_800.0
"""2100-01-01T00:00:00Z in unix time: no video position or wall-clock time of a frame comes near it."""
Verdict = Literal["true", "false"]
"""An operator's verdict on an alert: true, a real hazard; false, a false alarm."""
TIMESTAMP_RULE = (f"a finite number of seconds from 0 to {MAX_TIMESTAMP:.0f}: the frame's position in its video, "
                  "or its unix time (before 2100-01-01)")


def _valid_timestamp(value: float) -> float:
    # Refused here, before the camera sees the frame: a timestamp of 1e308 accepted once would
    # put every later, real frame "in the past" of the camera's tracker.
    if not (math.isfinite(value) and 0 <= value <= MAX_TIMESTAMP):
        raise ValueError(f"a frame timestamp is {TIMESTAMP_RULE}; got {value!r}")
    return value


FrameTimestamp = Annotated[float, AfterValidator(_valid_timestamp),
                           Field(json_schema_extra={"minimum": 0, "maximum": MAX_TIMESTAMP})]
"""When a frame was taken, in seconds, within the range every camera's timeline lies in."""


def public_url(url: str | None) -> str | None:
    """The URL without any user:password part, fit to show."""
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraConfig(_Schema):
    """Where a camera's alerts go, and when a hazard on it alerts."""

    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="http(s) URL that receives each alert as a signed POST; none: alerts are only "
        "recorded.")
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=500,
        description="Shared secret the deliveries are signed with (HMAC-SHA256, header X-Hazardvision-Signature); "
        "required with webhook_url. Never shown again.")
    rule: AlertRule | None = Field(default=None, description="When a tracked hazard alerts. Default: the "
                                   "service's alert rule.")
    tiling: TilingMode | None = Field(
        default=None, description="Also look at the camera's frames in overlapping tiles, for small, distant "
        "workers: on, off, or auto (frames of the pack's auto size and more). Default: each pack's default, chosen "
        "on validation data. Costs about one model run per tile.")

    stream_url: str | None = Field(
        default=None, min_length=1, max_length=2000,
        description="A stream the service reads for this camera itself (rtsp, rtsps, http or https: MJPEG or "
        "anything FFmpeg reads; never a local path), from a host in the networks an administrator allows streams "
        "from (HAZARDVISION_STREAM_NETWORKS; private ranges and loopback by default). Its frames are selected (rate "
        "target, motion gate) and go through the same path as POST /v1/cameras/{camera_id}/frames, read by one "
        "service process at a time. A user:password in it is stored encrypted and never shown. None: no stream "
        "(a change or removal stops the reader).")

    @model_validator(mode="after")
    def _url_with_secret(self) -> Self:
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("webhook_url and webhook_secret go together: give both, or neither")
        if self.rule is not None and not all(math.isfinite(v) for v in self.rule.model_dump().values()
                                             if isinstance(v, float)):
            raise ValueError("the rule's numbers must be finite")
        if self.rule is not None and self.rule.classes is not None and len(self.rule.classes) > MAX_RULE_CLASSES:
            raise ValueError(f"a rule names at most {MAX_RULE_CLASSES} classes")
        return self


class StreamView(_Schema):
    """The state of a camera stream's reader, whichever service process runs it."""

    state: Literal["waiting", "connecting", "live", "reconnecting"] = Field(
        description="waiting: no service process reads it yet (or its reader's lease expired); connecting: opening "
        "it for the first time; live: frames arrive; reconnecting: it dropped or could not be opened, and is tried "
        "again at next_retry_at.")
    reader: str | None = Field(default=None, description="Id of the service process that holds the stream's lease "
                               "and reads it (host, process id, random part); none: no process.")
    lease_expires_at: dt.datetime | None = Field(
        default=None, description="When the reader's lease runs out unless it renews it (every few seconds); then "
        "another service process takes the stream over (UTC).")
    last_error: str | None = Field(default=None, description="Why the stream last failed or ended, in FFmpeg's "
                                   "words; none: it never failed.")
    next_retry_at: dt.datetime | None = Field(default=None, description="When the reader tries to connect again "
                                              "(UTC), while reconnecting.")
    reconnects: int = Field(default=0, description="Connection attempts after the first, since the reader started.")
    frames_read: int = Field(default=0, description="Frames decoded since the reader started.")
    frames_analysed: int = Field(default=0, description="Of those, frames the selection (rate target, motion gate) "
                                 "sent to analysis.")
    updated_at: dt.datetime | None = Field(default=None, description="When the reader last reported (UTC).")


class CameraView(_Schema):
    """A camera's alert settings, without its secret."""

    camera_id: str = Field(description="Camera id.")
    configured: bool = Field(description="Whether PUT /v1/cameras/{camera_id} set this camera up.")
    webhook_url: str | None = Field(default=None, description="Where alerts are sent, if anywhere (without any "
                                    "user:password part).")
    rule: AlertRule = Field(description="When a tracked hazard alerts.")
    tiling: TilingMode | None = Field(default=None, description="Tiling of its frames; none: each pack's default.")
    stream_url: str | None = Field(default=None, description="The stream the service reads for this camera, "
                                   "without any user:password part; none: no stream.")
    stream: StreamView | None = Field(default=None, description="What the stream's reader is doing; none for a "
                                      "camera without a stream URL.")


class CameraStatus(CameraView):
    """A camera's settings and what this service process has seen of it."""

    webhook: bool = Field(description="Whether alerts go to a webhook.")
    frames_analysed: int = Field(description="Frames this service process analysed since it started or since the "
                                 "camera's last reset (0 once it forgot an idle camera).")
    last_frame_at: dt.datetime | None = Field(default=None, description="When the last of those frames arrived "
                                              "(UTC); none: no frame yet.")
    last_timestamp: float | None = Field(default=None, description="The last frame's own timestamp: the next "
                                         "frame's must be at or after it (POST .../reset starts over).")
    open_tracks: int = Field(description="Tracks the camera's tracker holds (confirmed, lost or tentative).")
    frame_status: Literal["ok", "no_signal", "view_obstructed", "frozen"] = Field(
        description="Status of the last frame: ok, no_signal, view_obstructed or frozen (ok before any frame).")


class CameraList(_Schema):
    """Cameras, by id."""

    cameras: list[CameraStatus] = Field(description="Every camera configured, or seen by this service process, "
                                        "or that raised an alert.")


class CameraDeleted(_Schema):
    """What deleting a camera removed, and what it kept for the record."""

    camera_id: str = Field(description="The camera.")
    configured: bool = Field(description="Whether it had settings (webhook, rule, tiling), now removed.")
    dropped_tracks: int = Field(description="Tracks this service process's tracker held for it, now forgotten.")
    alerts_kept: int = Field(description="Its alerts, kept with their snapshots (GET /v1/alerts?camera=...).")


class CameraReset(_Schema):
    """What a reset dropped: the camera starts over at its next frame, settings unchanged."""

    camera_id: str = Field(description="The camera.")
    dropped_tracks: int = Field(description="Tracks the tracker held.")
    frames_analysed: int = Field(description="Frames analysed since the camera's previous start or reset.")
    last_timestamp: float | None = Field(description="The last frame's timestamp before the reset; none: no frame.")


class FrameQuery(_Schema):
    """Query parameters of a frame (or form fields of a multipart upload)."""

    timestamp: FrameTimestamp | None = Field(
        default=None,
        description=f"When the frame was taken: {TIMESTAMP_RULE}. Each camera's frames must come in time order "
        "(an earlier one is a 409; POST /v1/cameras/{camera_id}/reset starts the camera over). Required (here or as "
        "a form field).")


class FrameFields(_Schema):
    """A frame's fields once query and form are merged: the timestamp is required."""

    timestamp: FrameTimestamp = Field(description=f"When the frame was taken: {TIMESTAMP_RULE}.")


class TrackedObject(_Schema):
    """A detection that belongs to a confirmed track."""

    class_name: str = Field(description="Catalogue class.")
    confidence: float = Field(description="Detector confidence, 0..1.")
    box: Box = Field(description="Where it is in the frame.")
    pack: str = Field(description="Model pack that detected it.")
    tracker_id: int = Field(description="Track id on this camera; the same object keeps it across frames.")
    is_hazard: bool = Field(description="Whether the catalogue marks this class as a hazard.")


class CameraTrouble(_Schema):
    """What a camera alert is about: the camera's picture, not a hazard."""

    status: Literal["no_signal", "view_obstructed", "frozen"] = Field(description="The frame status that held.")
    meaning: str = Field(description="What the status means for whoever watches the camera.")


class RaisedAlert(Alert):
    """An alert, with what the catalogue says about its hazard."""

    hazard: HazardInfo | None = Field(default=None, description="Hazard details from the catalogue (code, names, "
                                      "severity, rules, advice); none for a camera alert.")
    camera_trouble: CameraTrouble | None = Field(default=None, description="For a camera alert (kind camera): "
                                                 "which status held and what it means; none for a hazard.")
    snapshot_url: str = Field(description="The frame that raised the alert, as JPEG: "
                              "GET /v1/alerts/{alert_id}/snapshot.")


class FrameResponse(_Schema):
    """What one frame showed, and the alerts it raised."""

    camera_id: str = Field(description="The camera.")
    timestamp: float = Field(description="The frame's timestamp, as sent.")
    frame_quality: QualityInfo = Field(description="Whether the frame shows a scene (else it was not scanned for "
                                       "hazards), as this camera sees it: frozen when its picture stopped changing.")
    objects: list[TrackedObject] = Field(description="Tracked detections of the frame.")
    alerts: list[RaisedAlert] = Field(description="Alerts this frame raised (usually none: one per hazard, not per "
                                      "frame).")
    models: list[ModelRef] = Field(description="Model pack versions that looked at the frame.")


class AlertView(RaisedAlert):
    """A recorded alert."""

    created_at: dt.datetime = Field(description="When the service raised it (UTC).")
    model_versions: dict[str, str] = Field(description="Pack -> version that detected the hazard.")
    acknowledged: bool = Field(description="Whether someone acknowledged the alert.")
    acknowledged_at: dt.datetime | None = Field(default=None, description="When it was acknowledged (UTC).")
    acknowledged_by: str | None = Field(default=None, description="Name of the API key that acknowledged it.")
    ack_note: str | None = Field(default=None, description="The note given with the acknowledgement.")
    verdict: Verdict | None = Field(default=None, description="true: a real hazard; false: a false alarm; none: no "
                                    "verdict given yet.")
    verdict_at: dt.datetime | None = Field(default=None, description="When the verdict was given (UTC).")
    verdict_by: str | None = Field(default=None, description="Name of the API key that gave the verdict.")
    verdict_note: str | None = Field(default=None, description="The note given with the verdict (why it was a false "
                                     "alarm, for one).")


class AckRequest(_Schema):
    """An acknowledgement of an alert, with a verdict on it if the operator has one."""

    note: PlainText | None = Field(default=None, max_length=4000, description="What was done about the alert; "
                                   "required with verdict false (why it was a false alarm).")
    verdict: Verdict | None = Field(
        default=None, description="true: a real hazard; false: a false alarm. Given once; an alert acknowledged "
        "without a verdict may get one later. Default: none (an acknowledgement only).")

    @model_validator(mode="after")
    def _false_with_note(self) -> Self:
        if self.verdict == "false" and not (self.note or "").strip():
            raise ValueError("an alert marked false needs a note saying why it was a false alarm")
        return self


class AlertList(_Schema):
    """Alerts, newest first."""

    alerts: list[AlertView] = Field(description="The alerts that match the filters.")


class AlertFilter(_Schema):
    """Which alerts to list."""

    camera: str | None = Field(default=None, max_length=100, description="Only this camera's alerts.")
    since: UtcDatetime | None = Field(
        default=None, description="Only alerts raised at or after this time (ISO 8601; UTC without a zone).")
    until: UtcDatetime | None = Field(
        default=None, description="Only alerts raised before this time (ISO 8601; UTC without a zone).")
    acknowledged: bool | None = Field(default=None, description="true: only acknowledged alerts; false: only "
                                      "those nobody acknowledged yet. Default: both.")
    kind: Literal["hazard", "camera"] | None = Field(default=None, description="Only hazard alerts, or only camera "
                                                     "alerts (no signal, obstructed, frozen). Default: both.")
    class_name: str | None = Field(default=None, max_length=100, description="Only alerts of this catalogue class "
                                   "(or camera status, for camera alerts).")
    hazard: str | None = Field(default=None, max_length=100, description="Only alerts of this hazard code from the "
                               "catalogue (GET /v1/catalogue); a code it lacks matches nothing.")
    verdict: Literal["true", "false", "none"] | None = Field(
        default=None, description="true: only real hazards; false: only false alarms; none: only alerts without a "
        "verdict. Default: all.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most alerts to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Alerts to skip, for paging.")
