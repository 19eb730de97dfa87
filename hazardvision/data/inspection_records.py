"""Tables of inspections and rectifications: the visits that group scans, and the loop that follows each
confirmed hazard until it is rectified and verified (SQLAlchemy 2 ORM)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime


class InspectionRecord(Base):
    """One visit of an inspector to a site: the scans made there, with their findings and reviews."""

    __tablename__ = "inspections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    site: Mapped[str] = mapped_column(String(200), index=True)
    enterprise: Mapped[str | None] = mapped_column(String(200), index=True)
    inspector: Mapped[str] = mapped_column(String(100))
    """Name of the API key that opened the inspection."""
    visited_on: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    scans: Mapped[list[InspectionScanRecord]] = relationship(
        back_populates="inspection", cascade="all, delete-orphan", order_by="InspectionScanRecord.added_at")


class InspectionScanRecord(Base):
    """A scan filed under an inspection; a scan belongs to one inspection at most."""

    __tablename__ = "inspection_scans"

    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    added_by: Mapped[str] = mapped_column(String(100))

    inspection: Mapped[InspectionRecord] = relationship(back_populates="scans")


class RectificationStatus(StrEnum):
    """Where a confirmed hazard stands: waiting for its fix, fixed (an after-photo sent), or verified."""

    OPEN = "open"
    CLOSED = "closed"
    VERIFIED = "verified"


class RectificationRecord(Base):
    """A confirmed hazard's rectification: who fixes it by when, the after-photo that closed it, and who
    verified it."""

    __tablename__ = "rectifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    finding_id: Mapped[str] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), unique=True)
    scan_id: Mapped[str] = mapped_column(String(32), index=True)
    class_name: Mapped[str] = mapped_column(String(100))
    """The confirmed hazard's class (the review's, corrections included): what the after-photo must not show."""
    site: Mapped[str | None] = mapped_column(String(200))
    enterprise: Mapped[str | None] = mapped_column(String(200), index=True)
    responsible: Mapped[str] = mapped_column(String(200))
    deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(20), default=RectificationStatus.OPEN.value, index=True)
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    after_scan_id: Mapped[str | None] = mapped_column(String(32))
    after_passed: Mapped[bool | None] = mapped_column(Boolean)
    """Whether the after-photo's scan reported no finding of the hazard's class."""
    closed_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    override_reason: Mapped[str | None] = mapped_column(Text)
    """Why the verifier accepted an after-photo that still showed the hazard's class."""


Index("ix_rectifications_status_deadline", RectificationRecord.status, RectificationRecord.deadline)
