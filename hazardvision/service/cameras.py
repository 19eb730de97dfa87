"""`CameraHub`: each camera's tracker and alert aggregator, its settings, and its alerts.

Trackers live in memory, one per camera (the least recently used is forgotten past
`max_cameras`, and a reset drops one); settings and alerts live in the bank database, and the
frame that raised an alert in `HOME/frames/`. Alerts go to the camera's webhook through one
`WebhookSender`, whose `submit` returns at once: the frame path never waits on a receiver.

A camera belongs to the API key that configured it first; only that key or an admin configures,
resets or deletes it again. Cameras configured before owners were kept have none: only an admin changes
them. Deleting a camera removes its settings and forgets its tracker; its alerts, their frames and its
failed webhook deliveries stay for the record. A deletion or reset gives the camera a new epoch in the
database (`CameraEpochs`): the other service processes of the database drop their tracker of it when they
next poll the generation counters (`forget_started_over`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hazardvision.access import KeyRecord, Role
from hazardvision.annotate import encode_jpeg
from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import Catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.data.camera_epochs import CameraEpochs
from hazardvision.data.cameras import Cameras
from hazardvision.data.image_store import ImageStore
from hazardvision.data.scans import Visibility
from hazardvision.data.service_records import AlertRecord, CameraRecord
from hazardvision.detections import Detections
from hazardvision.errors import (
    AlertConflict,
    BankError,
    Forbidden,
    HazardVisionError,
    InvalidFrame,
    StreamRefused,
    UnknownAlert,
    UnknownCamera,
    UnknownClass,
)
from hazardvision.frame_quality import MEANING, CameraCondition, FrameQuality, FrameStatus
from hazardvision.home import Home
from hazardvision.images import DecodedImage, decode_image
from hazardvision.packs.tiling import TilingMode
from hazardvision.results import HazardInfo
from hazardvision.service.schemas.cameras import (
    AlertView,
    CameraConfig,
    CameraDeleted,
    CameraReset,
    CameraStatus,
    CameraTrouble,
    CameraView,
    RaisedAlert,
    StreamView,
    Verdict,
    public_url,
)
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.webhook_failures import FailedDeliveries
from hazardvision.video.alerts import Alert, AlertAggregator, AlertRule, camera_alert
from hazardvision.video.sources import StreamPolicy
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
    stream_url: str | None = None
    """Without its credentials (the stream readers decrypt those)."""

    def view(self, camera_id: str, stream: StreamView | None = None) -> CameraView:
        return CameraView(camera_id=camera_id, configured=self.configured, webhook_url=public_url(self.webhook_url),
                          rule=self.rule, tiling=self.tiling, stream_url=public_url(self.stream_url),
                          stream=stream if self.stream_url is not None else None)


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
    frames: int = 0
    last_frame_at: dt.datetime | None = None
    last_timestamp: float | None = None
    retired: bool = False
    """Reset or forgotten: a frame that waited for its lock takes the camera's new stream instead."""
    epoch: int = 0
    """The camera's epoch in the database when this stream was made: a later one (a deletion or reset through
    another process) retires it."""

    def admit(self, timestamp: float) -> None:
        """Refuse a frame older than the last one before it changes anything of the camera."""
        if self.last_timestamp is not None and timestamp < self.last_timestamp:
            raise InvalidFrame(
                f"frame timestamp {timestamp} of camera {self.camera_id!r} is older than its previous frame's "
                f"{self.last_timestamp}; send each camera's frames in time order, or start the camera over with "
                f"POST /v1/cameras/{self.camera_id}/reset")

    def analysed(self, timestamp: float) -> None:
        self.frames += 1
        self.last_frame_at = dt.datetime.now(dt.UTC)
        self.last_timestamp = timestamp

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
                 frozen_seconds: float = 10.0, failures: FailedDeliveries | None = None,
                 stream_policy: StreamPolicy | None = None) -> None:
        self.bank = bank
        self.records = Cameras(bank.database)
        self.epochs = CameraEpochs(bank.database)
        sealed = self.records.seal_clear()
        if sealed:
            log.info("encrypted %d webhook secrets stored in clear with %s", sealed, self.records.secrets.key_path)
        self.frames = ImageStore(Home(bank.home).frames)
        self.audit = audit
        self.catalogue = catalogue
        self.hazards = tuple(entry.class_name for entry in catalogue.classes if entry.hazard)
        self.webhooks = webhooks
        self.tracker_settings = tracker
        self.default_rule = default_rule
        self.max_cameras = max_cameras
        self.frozen_seconds = frozen_seconds
        self.failures = failures
        self.stream_policy = stream_policy or StreamPolicy.from_environment()
        self._streams: OrderedDict[str, CameraStream] = OrderedDict()

    def settings(self, camera_id: str) -> CameraSettings:
        """The stored settings of a camera, or the defaults."""
        return self._settings_of(self.records.get(camera_id=camera_id))

    def _settings_of(self, row: CameraRecord | None) -> CameraSettings:
        if row is None:
            return CameraSettings(None, None, self.default_rule, configured=False)
        try:
            secret = self.records.secret(row)
        except BankError as error:  # its alerts are still recorded, only not sent
            log.warning("camera %s sends no webhooks: %s", row.id, error)
            secret = None
        return CameraSettings(row.webhook_url, secret, AlertRule.model_validate(row.rule),
                              configured=True, tiling=_tiling(row.tiling), stream_url=row.stream_url)

    def opening(self, camera_id: str) -> tuple[CameraSettings, int]:
        """The stored settings of a camera (or the defaults) and its epoch, in one database read (call in a
        thread): what a new stream of it is made with."""
        row, epoch = self.records.opening(camera_id=camera_id)
        return self._settings_of(row), epoch

    def stream(self, camera_id: str, settings: CameraSettings, epoch: int = 0) -> CameraStream:
        """The camera's stream, made with `settings` and `epoch` unless it is in memory; call on the event loop."""
        stream = self.known(camera_id)
        if stream is None:
            stream = self._streams[camera_id] = CameraStream(
                camera_id, settings, Tracker(self.tracker_settings), AlertAggregator(self.hazards, settings.rule),
                CameraCondition(self.frozen_seconds, settings.rule.min_frames), epoch=epoch)
            while len(self._streams) > self.max_cameras:
                oldest, forgotten = self._streams.popitem(last=False)
                forgotten.retired = True
                log.info("forgot the tracks of idle camera %s", oldest)
        return stream

    def known(self, camera_id: str) -> CameraStream | None:
        """The camera's stream if it is in memory (and now the most recently used)."""
        stream = self._streams.get(camera_id)
        if stream is not None:
            self._streams.move_to_end(camera_id)
        return stream

    def configure(self, camera_id: str, config: CameraConfig, key: KeyRecord) -> CameraSettings:
        """Store a camera's settings (audited) if `key` may change it; the caller applies them to the stream in
        memory. A webhook URL to an address webhooks may not go to is an `InvalidWebhook`."""
        rule = config.rule or self.default_rule
        AlertAggregator(self.hazards, rule)  # UnknownClass now, not on the next frame
        url = str(config.webhook_url) if config.webhook_url is not None else None
        if url is not None:
            self.webhooks.targets.check_config(url)
        if config.stream_url is not None:
            try:
                self.stream_policy.check(config.stream_url)  # StreamRefused: a scheme or network not allowed
            except ValueError as error:  # urllib's word for a port out of range or a malformed host
                raise StreamRefused(f"the stream URL is malformed: {error}") from None
        with self.records.configure(camera_id=camera_id, webhook_url=url, webhook_secret=config.webhook_secret,
                                    rule=rule.model_dump(mode="json"), tiling=config.tiling, owner=key.name,
                                    stream_url=config.stream_url) as row:
            _may_change(camera_id, row.owner, key)  # raising here rolls the change back
            self.audit.append(key.name, "camera.configure", camera_id,
                              details={"webhook_url": public_url(url), "owner": row.owner, "rule": row.rule,
                                       "tiling": config.tiling, "stream_url": public_url(config.stream_url)})
        return CameraSettings(url, config.webhook_secret, rule, configured=True, tiling=config.tiling,
                              stream_url=row.stream_url)

    def apply(self, camera_id: str, settings: CameraSettings) -> None:
        """Use new settings from the next frame on: a new rule starts a new aggregator, the tracks stay."""
        stream = self._streams.get(camera_id)
        if stream is not None:
            stream.settings = settings
            stream.aggregator = AlertAggregator(self.hazards, settings.rule)
            stream.condition.min_frames = settings.rule.min_frames

    def record_alerts(self, stream: CameraStream, alerts: Sequence[Alert], *, actor: str, image: DecodedImage,
                      data: bytes, versions: dict[str, str]) -> list[RaisedAlert]:
        """Keep the frame, keep and audit the alerts, then queue their webhooks (never waiting for the receiver)."""
        try:
            self.frames.put(image.sha256, image.format, data)
        except OSError as error:
            raise BankError(f"cannot keep the frame of camera {stream.camera_id}'s alert in {self.frames.root}: "
                            f"{error.strerror}") from error
        with self.records.add_alerts(alerts=alerts, image_sha256=image.sha256, image_format=image.format,
                                     model_versions=versions, actor=actor):
            for alert in alerts:
                self.audit.append(actor, "alert", alert.alert_id, input_sha256=image.sha256, model_versions=versions,
                                  details={"camera_id": alert.camera_id, "kind": alert.kind,
                                           "class_name": alert.class_name,
                                           "tracker_id": alert.tracker_id, "raised_at": alert.raised_at})
        raised = [self.raised(alert) for alert in alerts]
        settings = stream.settings
        if settings.webhook_url and settings.webhook_secret:
            for alert in raised:
                payload = {"event": "alert", "alert": alert.model_dump(mode="json"), "model_versions": versions}
                listener = (self.failures.listener(stream.camera_id, alert.alert_id) if self.failures is not None
                            else None)
                try:
                    self.webhooks.submit(settings.webhook_url, settings.webhook_secret, payload, on_failure=listener)
                except (HazardVisionError, RuntimeError) as error:  # the alert is recorded; delivery is best effort
                    log.warning("webhook of alert %s not queued: %s", alert.alert_id, error)
        return raised

    def raised(self, alert: Alert) -> RaisedAlert:
        """The alert with its hazard's catalogue details, or what its camera status means."""
        hazard, trouble = None, None
        if alert.kind == "camera":
            status = FrameStatus(alert.class_name)
            trouble = CameraTrouble.model_validate({"status": status.value, "meaning": MEANING[status]})
        else:
            try:
                hazard = HazardInfo.of(self.catalogue.entry(alert.class_name))
            except UnknownClass:  # an alert of a class a later catalogue dropped still lists
                log.warning("alert %s has class %s, which the catalogue lacks", alert.alert_id, alert.class_name)
        return RaisedAlert(**alert.model_dump(), hazard=hazard, camera_trouble=trouble,
                           snapshot_url=f"/v1/alerts/{alert.alert_id}/snapshot")

    def _view(self, row: AlertRecord) -> AlertView:
        alert = Alert(alert_id=row.id, kind="camera" if row.kind == "camera" else "hazard", camera_id=row.camera_id,
                      class_name=row.class_name, tracker_id=row.tracker_id, first_seen=row.first_seen,
                      raised_at=row.raised_at, frames=row.frames, box=(row.x1, row.y1, row.x2, row.y2),
                      confidence=row.confidence)
        return AlertView(
            **self.raised(alert).model_dump(),
            created_at=as_utc(row.created_at) or dt.datetime.now(dt.UTC), model_versions=row.model_versions,
            acknowledged=row.acknowledged_at is not None, acknowledged_at=as_utc(row.acknowledged_at),
            acknowledged_by=row.acknowledged_by, ack_note=row.ack_note,
            verdict="false" if row.verdict == "false" else "true" if row.verdict == "true" else None,
            verdict_at=as_utc(row.verdict_at), verdict_by=row.verdict_by, verdict_note=row.verdict_note)

    def alerts(self, *, camera_id: str | None, since: dt.datetime | None, acknowledged: bool | None, limit: int,
               offset: int, until: dt.datetime | None = None, kind: str | None = None, class_name: str | None = None,
               hazard: str | None = None, verdict: Literal["true", "false", "none"] | None = None,
               visibility: Visibility | None = None) -> list[AlertView]:
        """Alerts, newest first, of those `visibility` admits (`service.scopes`); `hazard` (a catalogue code) stands
        for the classes of that code."""
        classes: set[str] | None = None
        if class_name is not None:
            classes = {class_name}
        if hazard is not None:
            coded = {entry.class_name for entry in self.catalogue.classes if entry.code == hazard}
            classes = coded if classes is None else classes & coded
        rows = self.records.alerts(camera_id=camera_id, since=as_utc(since), until=as_utc(until),
                                   acknowledged=acknowledged, kind=kind, classes=classes, verdict=verdict,
                                   limit=limit, offset=offset, visibility=visibility)
        return [self._view(row) for row in rows]

    def acknowledge(self, alert_id: str, actor: str, note: str | None, verdict: Verdict | None = None,
                    visibility: Visibility | None = None) -> AlertView:
        """Record who acknowledged the alert, and when (audited); a second acknowledgement is a conflict. With a
        verdict, record it (and acknowledge the alert if nobody had); a second verdict is a conflict. An alert
        `visibility` does not admit is an `UnknownAlert`, as one that does not exist."""
        at = dt.datetime.now(dt.UTC)
        with self.records.acknowledge(alert_id=alert_id, actor=actor, note=note, at=at, verdict=verdict,
                                      visibility=visibility) as (row, now):
            if row is None:
                raise UnknownAlert(_no_alert(alert_id))
            if not now and verdict is not None:
                raise AlertConflict(f"alert {alert_id} was given the verdict {row.verdict} already by "
                                    f"{row.verdict_by!r} at {as_utc(row.verdict_at)}; a verdict is final")
            if not now:
                raise AlertConflict(f"alert {alert_id} was acknowledged already by {row.acknowledged_by!r} at "
                                    f"{as_utc(row.acknowledged_at)}; an acknowledgement is final (a verdict, "
                                    "true or false, may still be given once)")
            # Inside the transaction: an acknowledgement that cannot be audited is not recorded.
            if verdict is None:
                self.audit.append(actor, "alert.ack", alert_id, details={"camera_id": row.camera_id, "note": note})
            else:
                self.audit.append(actor, "alert.verdict", alert_id,
                                  details={"camera_id": row.camera_id, "verdict": verdict, "note": note,
                                           "acknowledged_now": as_utc(row.acknowledged_at) == at})
        return self._view(row)

    def snapshot(self, alert_id: str, max_pixels: int, visibility: Visibility | None = None) -> bytes:
        """The frame that raised the alert, as JPEG; `UnknownAlert` for one `visibility` does not admit."""
        row = self.records.alert(alert_id=alert_id, visibility=visibility)
        if row is None:
            raise UnknownAlert(_no_alert(alert_id))
        if row.image_format is None:
            raise UnknownAlert(f"alert {alert_id} keeps no frame: it was raised before this service kept the frames "
                               "of its alerts, or was acknowledged and its frame deleted past the retention period "
                               "(HAZARDVISION_SCAN_RETENTION_DAYS)")
        try:
            data = self.frames.path(row.image_sha256, row.image_format).read_bytes()
        except OSError as error:
            raise BankError(f"the frame of alert {alert_id} is missing from {self.frames.root}") from error
        if row.image_format == "JPEG":
            return data
        return encode_jpeg(decode_image(data, max_pixels=max_pixels).pixels)

    # -- the cameras as a whole

    def stored(self) -> tuple[list[CameraRecord], set[str]]:
        """The configured cameras, and the ids of those that raised alerts (database reads: call in a thread)."""
        return self.records.configured(), self.records.with_alerts()

    def statuses(self, configured: Sequence[CameraRecord], alerted: set[str],
                 streams: Mapping[str, StreamView] | None = None) -> list[CameraStatus]:
        """Every camera configured, in memory, or with alerts, with the state of its stream reader (`streams`);
        call on the event loop (it reads the cameras in memory)."""
        rows = {row.id: row for row in configured}
        found = []
        for camera_id in sorted({*rows, *alerted, *self._streams}):
            settings = self._settings_of(rows.get(camera_id))
            stream = self._streams.get(camera_id)
            found.append(CameraStatus(
                **settings.view(camera_id, (streams or {}).get(camera_id)).model_dump(),
                webhook=settings.webhook_url is not None,
                frames_analysed=stream.frames if stream else 0,
                last_frame_at=stream.last_frame_at if stream else None,
                last_timestamp=stream.last_timestamp if stream else None,
                open_tracks=stream.tracker.active_tracks if stream else 0,
                frame_status=stream.condition.status.value if stream else "ok"))
        return found

    def check_known(self, camera_id: str) -> None:
        """`UnknownCamera` unless the camera is configured or raised alerts (database reads: call in a thread)."""
        if self.records.get(camera_id=camera_id) is None and not self.records.alerts(camera_id=camera_id, limit=1):
            raise UnknownCamera(f"no camera {camera_id!r}: it was never configured and has sent this service no "
                                "frames; GET /v1/cameras lists the cameras")

    def reset(self, camera_id: str, key: KeyRecord, stream: CameraStream | None) -> CameraReset:
        """Audit the reset of a camera if `key` may change it; the caller then drops its stream (`drop`). Call
        in a thread. A camera never configured belongs to nobody: any key that sends frames resets it."""
        row = self.records.get(camera_id=camera_id)
        if row is not None:
            _may_change(camera_id, row.owner, key)
        actor = key.name
        summary = CameraReset(camera_id=camera_id, dropped_tracks=stream.tracker.active_tracks if stream else 0,
                              frames_analysed=stream.frames if stream else 0,
                              last_timestamp=stream.last_timestamp if stream else None)
        with self.bank.database.session():  # the record and the new epoch (other processes follow) go together
            self.audit.append(actor, "camera.reset", camera_id, details=summary.model_dump(exclude={"camera_id"}))
            self.epochs.start_over(camera_id=camera_id)
        return summary

    def delete(self, camera_id: str, key: KeyRecord, stream: CameraStream | None) -> CameraDeleted:
        """Delete the camera's settings (audited, in their transaction) if `key` may change it; the caller then
        drops its stream (`drop`). Its alerts and their frames stay. Call in a thread."""
        with self.records.remove(camera_id=camera_id) as (row, kept):
            if row is None and stream is None and not kept:
                raise UnknownCamera(f"no camera {camera_id!r}: it was never configured and has sent this service no "
                                    "frames; GET /v1/cameras lists the cameras")
            if row is not None:
                _may_change(camera_id, row.owner, key)  # raising here rolls the deletion back
            summary = CameraDeleted(camera_id=camera_id, configured=row is not None,
                                    dropped_tracks=stream.tracker.active_tracks if stream else 0, alerts_kept=kept)
            self.audit.append(key.name, "camera.delete", camera_id, details={
                **summary.model_dump(exclude={"camera_id"}), "owner": row.owner if row else None,
                "webhook_url": public_url(row.webhook_url) if row else None,
                "stream_url": public_url(row.stream_url) if row else None})
            self.epochs.start_over(camera_id=camera_id)  # the other processes drop their trackers of it
        return summary

    def drop(self, camera_id: str, stream: CameraStream) -> None:
        """Forget the camera's tracker, aggregator and frame-quality state; its next frame starts afresh."""
        stream.retired = True
        if self._streams.get(camera_id) is stream:
            del self._streams[camera_id]

    def forget_started_over(self, epochs: Mapping[str, int]) -> list[str]:
        """Drop the streams made before their camera's epoch in `epochs` (camera id -> epoch: deleted or reset,
        perhaps through another process); the ids of those dropped. Call on the event loop. A frame in analysis
        ends on the old stream; the camera's next frame starts afresh."""
        dropped = []
        for camera_id, epoch in epochs.items():
            stream = self._streams.get(camera_id)
            if stream is not None and stream.epoch < epoch:
                self.drop(camera_id, stream)
                dropped.append(camera_id)
        return dropped


def _may_change(camera_id: str, owner: str | None, key: KeyRecord) -> None:
    """`Forbidden` unless `key` owns the camera or is an admin's."""
    if key.role is Role.ADMIN or (owner is not None and owner == key.name):
        return
    if owner is None:
        raise Forbidden(f"camera {camera_id!r} was configured before cameras had owners: only an admin key "
                        "changes, resets or deletes it")
    raise Forbidden(f"camera {camera_id!r} belongs to the key {owner!r}: only that key or an admin key changes, "
                    "resets or deletes it; use another camera id")


def _no_alert(alert_id: str) -> str:
    return f"no alert {alert_id!r}; GET /v1/alerts lists the alerts"
