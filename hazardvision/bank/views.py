"""What `bank` commands print with --json (and the service will return)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnnotationView(_View):
    id: int = Field(description="Annotation id.")
    class_name: str = Field(description="Catalogue class.")
    source_class: str | None = Field(description="Class name in the source dataset, before mapping.")
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels of the photo.")
    origin: str = Field(description="imported, detected, confirmed or rejected.")
    reviewer: str | None = Field(default=None, description="Who reviewed it, if anyone.")


class CaseView(_View):
    id: int = Field(description="Case id.")
    image_sha256: str = Field(description="SHA-256 of the photo's bytes.")
    image_path: str = Field(description="Where the photo is stored.")
    width: int = Field(description="Photo width in pixels.")
    height: int = Field(description="Photo height in pixels.")
    group_id: str | None = Field(description="Leakage group: photos of one group stay in one split.")
    source: str = Field(description="Dataset (or scan source) the case came from.")
    source_file: str = Field(description="File name within the source dataset.")
    source_split: str | None = Field(description="Split the source gave the photo, if any.")
    site: str | None = Field(default=None, description="Site name.")
    enterprise: str | None = Field(default=None, description="Enterprise name.")
    inspector: str | None = Field(default=None, description="Inspector who recorded it.")
    location: str | None = Field(default=None, description="Where on the site.")
    captured_at: dt.datetime | None = Field(default=None, description="When the photo was taken.")
    description: str | None = Field(default=None, description="What the case shows.")
    rectification: str | None = Field(default=None, description="How it was rectified.")
    annotations: list[AnnotationView] = Field(description="Boxes on the photo.")


class SourceStats(_View):
    name: str = Field(description="Source dataset name.")
    kind: str = Field(description="What the source is: dataset, scan, or label-studio (a Label Studio export).")
    licence: str | None = Field(description="Licence of the source.")
    origin: str | None = Field(description="Where the source comes from.")
    cases: dict[str, int] = Field(description="Cases per source split ('none' when the source had no splits).")
    backgrounds: dict[str, int] = Field(description="Cases without any annotation, per split.")
    boxes: dict[str, dict[str, int]] = Field(description="Boxes per split and source class.")


class BankStats(_View):
    home: str = Field(description="Bank folder.")
    schema_version: int = Field(description="Schema version of the bank.")
    cases: int = Field(description="Number of cases.")
    images: int = Field(description="Number of stored photos.")
    annotations: dict[str, int] = Field(description="Annotations per catalogue class.")
    groups: int = Field(description="Number of leakage groups.")
    sources: list[SourceStats] = Field(description="Per-source counts.")
