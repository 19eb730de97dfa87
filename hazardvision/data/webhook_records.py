"""Table of webhook deliveries that failed: what was sent, where, and why it did not arrive (SQLAlchemy 2 ORM)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime


class FailureStatus(StrEnum):
    FAILED = "failed"
    """Every attempt failed (no answer, 429 or 5xx each time, or another 4xx or a redirect at once)."""
    REFUSED = "refused"
    """The URL's host resolved to an address webhooks may not go to: nothing was sent."""
    DROPPED = "dropped"
    """The delivery queue was full, or the service stopped, before it was sent."""
    DELIVERED = "delivered"
    """A redelivery reached the receiver."""


class WebhookFailureRecord(Base):
    """A webhook delivery that did not reach its receiver, kept so that it can be looked at and sent again."""

    __tablename__ = "webhook_failures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(32), unique=True)
    """The X-Hazardvision-Delivery header of every attempt, redeliveries included (receivers deduplicate on it)."""
    camera_id: Mapped[str] = mapped_column(String(100), index=True)
    alert_id: Mapped[str | None] = mapped_column(String(32), index=True)
    url: Mapped[str] = mapped_column(Text)
    """The target without credentials, query or fragment (a redelivery goes to the camera's webhook URL)."""
    body: Mapped[str] = mapped_column(Text)
    """The payload as sent (canonical JSON); a redelivery signs and sends these bytes again."""
    status: Mapped[str] = mapped_column(String(20), default=FailureStatus.FAILED.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """HTTP attempts in all, redeliveries included."""
    http_status: Mapped[int | None] = mapped_column(Integer)
    """The last answer's status code; null when none came."""
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    """When the first delivery gave up."""
    last_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    redeliveries: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    redelivered_by: Mapped[str | None] = mapped_column(String(100))
    """Name of the API key that asked for the last redelivery."""
