"""Cameras: their alert settings, their frames, and the alerts they raise."""

from __future__ import annotations

import datetime as dt
import math
from typing import Self

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from hazardvision.packs.tiling import TilingMode
from hazardvision.results import Box, ModelRef, QualityInfo
from hazardvision.service.schemas.common import UtcDatetime
from hazardvision.video.alerts import Alert, AlertRule

CAMERA_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"
MAX_RULE_CLASSES = 64


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


class CameraView(_Schema):
    """A camera's alert settings, without its secret."""

    camera_id: str = Field(description="Camera id.")
    configured: bool = Field(description="Whether PUT /v1/cameras/{camera_id} set this camera up.")
    webhook_url: str | None = Field(default=None, description="Where alerts are sent, if anywhere.")
    rule: AlertRule = Field(description="When a tracked hazard alerts.")
    tiling: TilingMode | None = Field(default=None, description="Tiling of its frames; none: each pack's default.")


class FrameQuery(_Schema):
    """Query parameters of a frame (or form fields of a multipart upload)."""

    timestamp: float | None = Field(
        default=None, allow_inf_nan=False,
        description="When the frame was taken, in seconds (video position or unix time); each camera's frames "
        "must come in time order. Required (here or as a form field).")


class FrameFields(_Schema):
    """A frame's fields once query and form are merged: the timestamp is required."""

    timestamp: float = Field(allow_inf_nan=False, description="When the frame was taken, in seconds.")


class TrackedObject(_Schema):
    """A detection that belongs to a confirmed track."""

    class_name: str = Field(description="Catalogue class.")
    confidence: float = Field(description="Detector confidence, 0..1.")
    box: Box = Field(description="Where it is in the frame.")
    pack: str = Field(description="Model pack that detected it.")
    tracker_id: int = Field(description="Track id on this camera; the same object keeps it across frames.")
    is_hazard: bool = Field(description="Whether the catalogue marks this class as a hazard.")


class FrameResponse(_Schema):
    """What one frame showed, and the alerts it raised."""

    camera_id: str = Field(description="The camera.")
    timestamp: float = Field(description="The frame's timestamp, as sent.")
    frame_quality: QualityInfo = Field(description="Whether the frame shows a scene (else it was not scanned for "
                                       "hazards), as this camera sees it: frozen when its picture stopped changing.")
    objects: list[TrackedObject] = Field(description="Tracked detections of the frame.")
    alerts: list[Alert] = Field(description="Alerts this frame raised (usually none: one per hazard, not per frame).")
    models: list[ModelRef] = Field(description="Model pack versions that looked at the frame.")


class AlertView(Alert):
    """A recorded alert."""

    created_at: dt.datetime = Field(description="When the service raised it (UTC).")
    model_versions: dict[str, str] = Field(description="Pack -> version that detected the hazard.")


class AlertList(_Schema):
    """Alerts, newest first."""

    alerts: list[AlertView] = Field(description="The alerts that match the filters.")


class AlertFilter(_Schema):
    """Which alerts to list."""

    camera: str | None = Field(default=None, max_length=100, description="Only this camera's alerts.")
    since: UtcDatetime | None = Field(
        default=None, description="Only alerts raised at or after this time (ISO 8601; UTC without a zone).")
    limit: int = Field(default=100, ge=1, le=1000, description="Most alerts to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Alerts to skip, for paging.")
