"""`WebhookFailures`: the webhook deliveries that did not reach their receiver, and their redeliveries."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from sqlalchemy import select

from hazardvision.data.database import Database
from hazardvision.data.webhook_records import FailureStatus, WebhookFailureRecord


class WebhookFailures:
    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, *, delivery_id: str, camera_id: str, alert_id: str | None, url: str, body: str, status: str,
               attempts: int, http_status: int | None, error: str | None, at: dt.datetime) -> WebhookFailureRecord:
        """Keep a delivery that gave up (`url` already without credentials, query or fragment)."""
        with self.database.session() as session:
            row = WebhookFailureRecord(
                id=uuid.uuid4().hex, delivery_id=delivery_id, camera_id=camera_id, alert_id=alert_id, url=url,
                body=body, status=status, attempts=attempts, http_status=http_status, last_error=error,
                failed_at=at, last_attempt_at=at)
            session.add(row)
            session.flush()
            return row

    def get(self, *, failure_id: str) -> WebhookFailureRecord | None:
        with self.database.session() as session:
            return session.get(WebhookFailureRecord, failure_id)

    def failures(self, *, cameras: Collection[str] | None = None, camera_id: str | None = None,
                 status: str | None = None, limit: int = 100, offset: int = 0) -> list[WebhookFailureRecord]:
        """Failures, newest first; `cameras` (when given) bounds which cameras' failures may be listed at all."""
        query = (select(WebhookFailureRecord)
                 .order_by(WebhookFailureRecord.failed_at.desc(), WebhookFailureRecord.id).limit(limit).offset(offset))
        if cameras is not None:
            query = query.where(WebhookFailureRecord.camera_id.in_(list(cameras)))
        if camera_id:
            query = query.where(WebhookFailureRecord.camera_id == camera_id)
        if status:
            query = query.where(WebhookFailureRecord.status == status)
        with self.database.session() as session:
            return list(session.scalars(query))

    @contextmanager
    def redelivered(self, *, failure_id: str, actor: str, delivered: bool, http_status: int | None,
                    error: str | None, refused: bool, at: dt.datetime) -> Iterator[WebhookFailureRecord | None]:
        """Record one redelivery attempt and yield the row (None if it is gone) inside the transaction, so that the
        caller's audit entry commits with it."""
        with self.database.session() as session:
            row = session.get(WebhookFailureRecord, failure_id, with_for_update=True)
            if row is not None:
                row.attempts += 1
                row.redeliveries += 1
                row.last_attempt_at = at
                row.http_status = http_status
                row.redelivered_by = actor
                if delivered:
                    row.status = FailureStatus.DELIVERED.value
                    row.delivered_at = at
                else:
                    row.status = (FailureStatus.REFUSED if refused else FailureStatus.FAILED).value
                    row.last_error = error
                session.flush()
            yield row
