"""Tables of the sample bank: sources, photos, cases, annotations, label versions, snapshots (SQLAlchemy 2 ORM)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hazardvision.data.base import Base, utcnow
from hazardvision.data.column_types import UtcDateTime


class Origin(StrEnum):
    """Where an annotation came from."""

    IMPORTED = "imported"
    DETECTED = "detected"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CORRECTED = "corrected"
    """Set by a correction of the case's labels (`bank relabel`)."""


LABELLED_ORIGINS = (Origin.IMPORTED.value, Origin.CONFIRMED.value, Origin.CORRECTED.value)
"""The origins of a case's labels (its ground truth); detections and rejections are not labels."""


class Enterprise(Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    location: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    enterprise: Mapped[Enterprise | None] = relationship()


class Source(Base):
    """A labelled dataset the bank imported from, or the scans of the service."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # dataset | scan | label-studio
    origin: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Image(Base):
    """A stored photo, identified by the SHA-256 of its bytes."""

    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(10))
    size_bytes: Mapped[int] = mapped_column(Integer)
    dhash: Mapped[int] = mapped_column(BigInteger)
    """64-bit difference hash of an area-averaged thumbnail (signed 64-bit); near-duplicates."""
    dhash_bilinear: Mapped[int] = mapped_column(BigInteger)
    """64-bit difference hash of a bilinear thumbnail (signed 64-bit); exact duplicates."""
    group_id: Mapped[str | None] = mapped_column(String(64), index=True)


class Case(Base):
    """One sample: a photo, where it came from, and its annotations."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256"), unique=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    source_file: Mapped[str] = mapped_column(Text)
    """Path inside the dataset, or `<scan id>/<upload name>`: no length limit (PostgreSQL would enforce one)."""
    source_split: Mapped[str | None] = mapped_column(String(10))
    inspector: Mapped[str | None] = mapped_column(String(200))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    location: Mapped[str | None] = mapped_column(String(300))
    captured_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    description: Mapped[str | None] = mapped_column(Text)
    rectification: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    image: Mapped[Image] = relationship()
    source: Mapped[Source] = relationship()
    site: Mapped[Site | None] = relationship()
    enterprise: Mapped[Enterprise | None] = relationship()
    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Annotation.id"
    )
    label_versions: Mapped[list[LabelVersion]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="LabelVersion.version"
    )


class Annotation(Base):
    """A box on a case's photo, in pixels, with its catalogue class and origin."""

    __tablename__ = "annotations"
    __table_args__ = (CheckConstraint("x2 >= x1 AND y2 >= y1", name="box_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(100), index=True)
    source_class: Mapped[str | None] = mapped_column(Text)
    """The dataset's own class name, as its data.yaml or COCO file spells it (any length)."""
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(20), default=Origin.IMPORTED.value)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="annotations")


class LabelVersion(Base):
    """One version of a case's labels, with who or what made it, when and why.

    A case without rows is at version 1: its labels as first recorded. The first correction writes
    version 1 (the labels it replaces) and version 2 together, so every earlier version stays readable.
    """

    __tablename__ = "label_versions"
    __table_args__ = (UniqueConstraint("case_id", "version", name="uq_label_versions_case_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    author: Mapped[str] = mapped_column(String(200))
    """Who or what made this version: a user, or `import of <source>`."""
    via: Mapped[str] = mapped_column(String(20))  # recorded | import | relabel | review
    reason: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    """The boxes of this version: class_name, source_class, box (x1, y1, x2, y2 in pixels), origin."""

    case: Mapped[Case] = relationship(back_populates="label_versions")


class PendingImage(Base):
    """An image file being written: the journal that lets a crashed import clean up after itself."""

    __tablename__ = "pending_images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class SnapshotRecord(Base):
    """A frozen dataset made from the bank."""

    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    path: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict[str, object]] = mapped_column(JSON)


__all__ = ["LABELLED_ORIGINS", "Annotation", "Base", "Case", "Enterprise", "Image", "LabelVersion", "Origin",
           "PendingImage", "Site", "SnapshotRecord", "Source", "utcnow"]
