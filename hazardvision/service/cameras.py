"""`CameraHub`: each camera's tracker and alert aggregator, its settings, and its alerts.

Trackers live in memory, one per camera (the least recently used is forgotten past
`max_cameras`); settings and alerts live in the bank database. Alerts go to the camera's webhook
through one `WebhookSender`, whose `submit` returns at once: the frame path never waits on a
receiver.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from hazardvision.audit import AuditLog
from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import Catalogue
from hazardvision.data.cameras import Cameras
from hazardvision.detections import Detections
from hazardvision.errors import HazardVisionError
from hazardvision.frame_quality import CameraCondition, FrameQuality
from hazardvision.images import DecodedImage
from hazardvision.packs.tiling import TilingMode
from hazardvision.service.schemas.cameras import AlertView, CameraConfig, CameraView
from hazardvision.service.schemas.common import as_utc
from hazardvision.video.alerts import Alert, AlertAggregator, AlertRule, camera_alert
from hazardvision.video.tracking import Tracker, TrackerSettings
from hazardvision.video.webhooks import WebhookSender

log = logging.getLogger("hazardvision.service")


@dataclass
class CameraSettings:
    """A camera's webhook and rule, as stored."""

    webhook_url: str | None
    webhook_secret: str | None
    rule: AlertRule
    configured: bool
    tiling: TilingMode | None = None

    def view(self, camera_id: str) -> CameraView:
        return CameraView(camera_id=camera_id, configured=self.configured, webhook_url=self.webhook_url,
                          rule=self.rule, tiling=self.tiling)


@dataclass
class CameraStream:
    """What the service remembers of one camera between its frames."""

    camera_id: str
    settings: CameraSettings
    tracker: Tracker
    aggregator: AlertAggregator
    condition: CameraCondition
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held from detection to alerts, so that a camera's frames are tracked one at a time, in arrival order."""

    def look(self, image: DecodedImage, timestamp: float) -> tuple[FrameQuality, list[Alert]]:
        """The frame's quality as this camera sees it (frozen included), and the camera alert it raises, if any."""
        quality, alert = self.condition.update(image.pixels, timestamp)
        if not alert:
            return quality, []
        return quality, [camera_alert(self.camera_id, quality.status.value, timestamp,
                                      frames=self.condition.min_frames, width=image.width, height=image.height)]

    def update(self, detections: Detections, timestamp: float) -> tuple[Detections, list[Alert]]:
        tracked = self.tracker.update(detections, timestamp)
        return tracked, self.aggregator.update(self.camera_id, tracked, timestamp)


def _tiling(stored: str | None) -> TilingMode | None:
    return stored if stored in {"auto", "on", "off"} else None  # type: ignore[return-value]


class CameraHub:
    """Cameras by id: streams in memory, settings and alerts in the bank."""

    def __init__(self, bank: SampleBank, audit: AuditLog, catalogue: Catalogue, webhooks: WebhookSender, *,
                 tracker: TrackerSettings, default_rule: AlertRule, max_cameras: int,
                 frozen_seconds: float = 10.0) -> None:
        self.bank = bank
        self.records = Cameras(bank.database)
        self.audit = audit
        self.hazards = tuple(entry.class_name for entry in catalogue.classes if entry.hazard)
        self.webhooks = webhooks
        self.tracker_settings = tracker
        self.default_rule = default_rule
        self.max_cameras = max_cameras
        self.frozen_seconds = frozen_seconds
        self._streams: OrderedDict[str, CameraStream] = OrderedDict()

    def settings(self, camera_id: str) -> CameraSettings:
        """The stored settings of a camera, or the defaults."""
        row = self.records.get(camera_id=camera_id)
        if row is None:
            return CameraSettings(None, None, self.default_rule, configured=False)
        return CameraSettings(row.webhook_url, row.webhook_secret, AlertRule.model_validate(row.rule),
                              configured=True, tiling=_tiling(row.tiling))

    def stream(self, camera_id: str, settings: CameraSettings) -> CameraStream:
        """The camera's stream, made with `settings` unless it is in memory; call on the event loop."""
        stream = self.known(camera_id)
        if stream is None:
            stream = self._streams[camera_id] = CameraStream(
                camera_id, settings, Tracker(self.tracker_settings), AlertAggregator(self.hazards, settings.rule),
                CameraCondition(self.frozen_seconds, settings.rule.min_frames))
            while len(self._streams) > self.max_cameras:
                oldest, _ = self._streams.popitem(last=False)
                log.info("forgot the tracks of idle camera %s", oldest)
        return stream

    def known(self, camera_id: str) -> CameraStream | None:
        """The camera's stream if it is in memory (and now the most recently used)."""
        stream = self._streams.get(camera_id)
        if stream is not None:
            self._streams.move_to_end(camera_id)
        return stream

    def configure(self, camera_id: str, config: CameraConfig, actor: str) -> CameraSettings:
        """Store a camera's settings (audited); the caller applies them to the stream in memory."""
        rule = config.rule or self.default_rule
        AlertAggregator(self.hazards, rule)  # UnknownClass now, not on the next frame
        url = str(config.webhook_url) if config.webhook_url is not None else None
        with self.records.configure(camera_id=camera_id, webhook_url=url, webhook_secret=config.webhook_secret,
                                    rule=rule.model_dump(mode="json"), tiling=config.tiling) as row:
            self.audit.append(actor, "camera.configure", camera_id,
                              details={"webhook": url is not None, "rule": row.rule, "tiling": config.tiling})
        return CameraSettings(url, config.webhook_secret, rule, configured=True, tiling=config.tiling)

    def apply(self, camera_id: str, settings: CameraSettings) -> None:
        """Use new settings from the next frame on: a new rule starts a new aggregator, the tracks stay."""
        stream = self._streams.get(camera_id)
        if stream is not None:
            stream.settings = settings
            stream.aggregator = AlertAggregator(self.hazards, settings.rule)
            stream.condition.min_frames = settings.rule.min_frames

    def record_alerts(self, stream: CameraStream, alerts: Sequence[Alert], actor: str, image_sha256: str,
                      versions: dict[str, str]) -> None:
        """Keep and audit the alerts, then queue their webhooks (never waiting for the receiver)."""
        with self.records.add_alerts(alerts=alerts, image_sha256=image_sha256, model_versions=versions):
            for alert in alerts:
                self.audit.append(actor, "alert", alert.alert_id, input_sha256=image_sha256, model_versions=versions,
                                  details={"camera_id": alert.camera_id, "kind": alert.kind,
                                           "class_name": alert.class_name,
                                           "tracker_id": alert.tracker_id, "raised_at": alert.raised_at})
        settings = stream.settings
        if settings.webhook_url and settings.webhook_secret:
            for alert in alerts:
                payload = {"event": "alert", "alert": alert.model_dump(mode="json"), "model_versions": versions}
                try:
                    self.webhooks.submit(settings.webhook_url, settings.webhook_secret, payload)
                except (HazardVisionError, RuntimeError) as error:  # the alert is recorded; delivery is best effort
                    log.warning("webhook of alert %s not queued: %s", alert.alert_id, error)

    def alerts(self, *, camera_id: str | None, since: dt.datetime | None, limit: int, offset: int) -> list[AlertView]:
        rows = self.records.alerts(camera_id=camera_id, since=as_utc(since), limit=limit, offset=offset)
        return [AlertView(
            alert_id=row.id, kind="camera" if row.kind == "camera" else "hazard", camera_id=row.camera_id,
            class_name=row.class_name, tracker_id=row.tracker_id,
            first_seen=row.first_seen, raised_at=row.raised_at, frames=row.frames,
            box=(row.x1, row.y1, row.x2, row.y2), confidence=row.confidence,
            created_at=as_utc(row.created_at) or dt.datetime.now(dt.UTC), model_versions=row.model_versions,
        ) for row in rows]
