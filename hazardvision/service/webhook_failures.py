"""`FailedDeliveries`: webhook deliveries that did not reach their receiver, kept, listed and sent again.

A delivery that gave up (every attempt failed, its host resolved to an address webhooks may not go
to, or it was dropped from a full queue or at shutdown) is stored with its camera, alert, target
(without credentials, query or fragment), attempts and last error. A redelivery sends the stored body
once, now, signed with the camera's current secret and under the first delivery's id, to the camera's
current webhook URL, through the same address checks as every delivery; it is audited with its outcome.
"""

from __future__ import annotations

import datetime as dt
import logging

from hazardvision.access import KeyRecord, Role
from hazardvision.data.audit import AuditLog
from hazardvision.data.cameras import Cameras
from hazardvision.data.webhook_failures import WebhookFailures
from hazardvision.data.webhook_records import FailureStatus, WebhookFailureRecord
from hazardvision.errors import BankError, UnknownWebhookFailure, WebhookFailureConflict
from hazardvision.service.schemas.common import as_utc
from hazardvision.service.schemas.webhooks import WebhookFailureFilter, WebhookFailureView
from hazardvision.video.webhooks import DeliveryOutcome, DeliveryStatus, FailureListener, WebhookSender

log = logging.getLogger("hazardvision.service")


class FailedDeliveries:
    """The failed webhook deliveries of the service's cameras."""

    def __init__(self, cameras: Cameras, records: WebhookFailures, sender: WebhookSender, audit: AuditLog) -> None:
        self.cameras = cameras
        self.records = records
        self.sender = sender
        self.audit = audit

    def listener(self, camera_id: str, alert_id: str | None) -> FailureListener:
        """What the sender calls when a delivery of this camera's alert gives up: keep it."""
        def failed(outcome: DeliveryOutcome, body: bytes) -> None:
            self.records.record(
                delivery_id=outcome.delivery_id, camera_id=camera_id, alert_id=alert_id, url=outcome.url,
                body=body.decode(), status=outcome.status.value, attempts=outcome.attempts,
                http_status=outcome.http_status, error=outcome.error,
                at=dt.datetime.fromtimestamp(outcome.finished_at, dt.UTC))
            log.warning("webhook of camera %s (alert %s) %s after %d attempts: %s", camera_id, alert_id,
                        outcome.status.value, outcome.attempts, outcome.error)
        return failed

    def failures(self, key: KeyRecord, query: WebhookFailureFilter) -> list[WebhookFailureView]:
        """Newest first: every camera's for an admin's key, those of the cameras it owns for another."""
        cameras = None if key.role is Role.ADMIN else self.cameras.owned_by(owner=key.name)
        rows = self.records.failures(cameras=cameras, camera_id=query.camera, status=query.status,
                                     limit=query.limit, offset=query.offset)
        return [_view(row) for row in rows]

    def redeliver(self, failure_id: str, key: KeyRecord) -> WebhookFailureView:
        """Send a failed delivery again, now, and record (audited) whether it arrived."""
        row = self.records.get(failure_id=failure_id)
        camera = self.cameras.get(camera_id=row.camera_id) if row is not None else None
        if row is None or not _may_see(key, camera.owner if camera is not None else None):
            raise UnknownWebhookFailure(f"no failed webhook delivery {failure_id!r}; GET /v1/webhooks/failures lists "
                                        "those of the cameras your key owns")
        if row.status == FailureStatus.DELIVERED:
            raise WebhookFailureConflict(f"delivery {failure_id} reached its receiver at {as_utc(row.delivered_at)} "
                                         "already; it is not sent twice")
        if camera is None or not camera.webhook_url or not camera.webhook_secret:
            raise WebhookFailureConflict(f"camera {row.camera_id!r} has no webhook now (deleted, or its webhook "
                                         "removed): set one with PUT /v1/cameras/{camera_id} to redeliver to it")
        try:
            secret = self.cameras.secret(camera) or ""
        except BankError as error:
            raise WebhookFailureConflict(f"camera {row.camera_id!r}'s webhook secret cannot be read ({error}); set "
                                         "it again with PUT /v1/cameras/{camera_id}") from error
        outcome = self.sender.send_now(camera.webhook_url, secret, row.body.encode(), row.delivery_id)
        delivered = outcome.status is DeliveryStatus.DELIVERED
        with self.records.redelivered(failure_id=failure_id, actor=key.name, delivered=delivered,
                                      http_status=outcome.http_status, error=outcome.error,
                                      refused=outcome.status is DeliveryStatus.REFUSED,
                                      at=dt.datetime.fromtimestamp(outcome.finished_at, dt.UTC)) as updated:
            if updated is None:
                raise UnknownWebhookFailure(f"failed webhook delivery {failure_id!r} was removed meanwhile")
            self.audit.append(key.name, "webhook.redeliver", failure_id,
                              details={"camera_id": row.camera_id, "alert_id": row.alert_id, "url": outcome.url,
                                       "status": outcome.status.value, "http_status": outcome.http_status,
                                       "error": outcome.error})
        return _view(updated)


def _may_see(key: KeyRecord, owner: str | None) -> bool:
    return key.role is Role.ADMIN or (owner is not None and owner == key.name)


def _view(row: WebhookFailureRecord) -> WebhookFailureView:
    now = dt.datetime.now(dt.UTC)
    return WebhookFailureView(
        failure_id=row.id, delivery_id=row.delivery_id, camera_id=row.camera_id, alert_id=row.alert_id, url=row.url,
        status=row.status, attempts=row.attempts, http_status=row.http_status,  # type: ignore[arg-type]
        last_error=row.last_error, failed_at=as_utc(row.failed_at) or now,
        last_attempt_at=as_utc(row.last_attempt_at) or now, redeliveries=row.redeliveries,
        delivered_at=as_utc(row.delivered_at), redelivered_by=row.redelivered_by)
