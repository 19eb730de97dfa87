"""Tables of the service: API keys, scans, findings, reviews, cameras and alerts (SQLAlchemy 2 ORM)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime


class ApiKey(Base):
    """An API key of the service: only the SHA-256 of the key is kept, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(8))
    """The key's first characters, enough to tell keys apart in a listing."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    sites: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    """The sites whose scans the key reads (a list of names); null or empty: every site."""


# A name is free again once its key is revoked, so uniqueness covers the active keys only.
Index("uq_api_keys_active_name", ApiKey.name, unique=True,
      sqlite_where=ApiKey.revoked_at.is_(None), postgresql_where=ApiKey.revoked_at.is_(None))


class WebSession(Base):
    """A signed-in page's session: the cookie's token, kept as its SHA-256, and the key it acts for."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    """Sent back by the page in X-CSRF-Token with every write: a cross-site form cannot know it."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    key: Mapped[ApiKey] = relationship()


class ReviewStatus(StrEnum):
    """Where a finding of the service stands with the inspectors."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class ScanRecord(Base):
    """A photo scanned by the service: who sent it, where it was taken, and the result it got."""

    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    """Name of the API key that sent the photo."""
    source: Mapped[str] = mapped_column(Text)
    """The upload's file name, as the client sent it (multipart names have no length limit)."""
    site: Mapped[str | None] = mapped_column(String(200), index=True)
    enterprise: Mapped[str | None] = mapped_column(String(200), index=True)
    camera: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    captured_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 of the bytes uploaded: the photo's identity (audit records and Idempotency-Key retries name it)."""
    image_format: Mapped[str] = mapped_column(String(10))
    stored_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    """SHA-256 of the bytes kept (the upload without its EXIF GPS position), under which the photo lives in the
    service's scan store (not in the bank until reviewed); null: the bytes uploaded (scans before version 14)."""
    result: Mapped[dict[str, object]] = mapped_column(JSON)
    model_versions: Mapped[dict[str, str]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    """The client's Idempotency-Key header: a retry with the same key (and actor) gets this scan back."""
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)
    """When the scan was deleted (by an admin, or past the retention period): its photo, result, note and
    unreviewed findings are gone; the row stays, with its reviewed findings, for the reviews that name them."""

    __table_args__ = (Index("ix_scans_actor_idempotency_key", "actor", "idempotency_key", unique=True),)

    findings: Mapped[list[FindingRecord]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", order_by="FindingRecord.position"
    )


class FindingRecord(Base):
    """A hazard the service found in a scanned photo, with its review status."""

    __tablename__ = "findings"
    __table_args__ = (CheckConstraint("x2 >= x1 AND y2 >= y1", name="finding_box_ordered"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(100))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    pack: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=ReviewStatus.PENDING.value)

    scan: Mapped[ScanRecord] = relationship(back_populates="findings")


class ReviewRecord(Base):
    """An inspector's verdict on a finding; one per finding, and final."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[str] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), unique=True)
    scan_id: Mapped[str] = mapped_column(String(32), index=True)
    decision: Mapped[str] = mapped_column(String(20))
    reviewer: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    class_name: Mapped[str] = mapped_column(String(100))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    corrected: Mapped[bool] = mapped_column(default=False)
    case_id: Mapped[int | None] = mapped_column(Integer)
    """The bank case of the photo; a plain id, so that deleting the case keeps the review."""
    annotation_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class CameraRecord(Base):
    """A camera's alert settings: its webhook and its alert rule."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    """Encrypted (`SecretBox`: `fernet:...`); a bank from before encryption may hold it in clear until the
    service's next start seals it."""
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """Name of the API key that configured the camera first; null for cameras configured before owners were
    kept (only an admin changes those)."""
    rule: Mapped[dict[str, object]] = mapped_column(JSON)
    tiling: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """Tiling mode of its frames (auto, on, off); null: each pack's default."""
    stream_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The stream the service reads for this camera, without its user name and password; null: none."""
    stream_credentials: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The stream URL's `user:password`, encrypted (`SecretBox`); null: the URL has none."""
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AlertRecord(Base):
    """An alert raised from a camera's frames."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="hazard", server_default="hazard")
    camera_id: Mapped[str] = mapped_column(String(100), index=True)
    class_name: Mapped[str] = mapped_column(String(100))
    tracker_id: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    image_sha256: Mapped[str] = mapped_column(String(64))
    image_format: Mapped[str | None] = mapped_column(String(10), nullable=True)
    """Format of the frame kept at `HOME/frames/` under `image_sha256`; null: not kept (raised before version 6)."""
    model_versions: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """Name of the API key that acknowledged the alert."""
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    """true (a real hazard) or false (a false alarm); null: no verdict given (acknowledged or not)."""
    verdict_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    verdict_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """Name of the API key that gave the verdict."""
    verdict_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """Name of the API key that sent the frame (`camera-stream` for a stream the service reads); null for an alert
    raised before version 18 whose audit record was not found."""
