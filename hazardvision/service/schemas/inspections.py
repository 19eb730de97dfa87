"""Inspections: the scans of one site visit, grouped, with their findings and reviews."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.service.schemas.common import PlainText, UtcDatetime
from hazardvision.service.schemas.rectifications import RectificationView
from hazardvision.service.schemas.reviews import ReviewResponse
from hazardvision.service.schemas.scans import ScanResponse


class InspectionRequest(BaseModel):
    """A visit to open: where, for whom, when."""

    model_config = ConfigDict(extra="forbid")

    site: PlainText = Field(min_length=1, max_length=200, description="Site visited.")
    enterprise: PlainText | None = Field(default=None, min_length=1, max_length=200,
                                         description="Enterprise the site belongs to.")
    visited_on: UtcDatetime | None = Field(default=None, description="When the visit took place, ISO 8601 "
                                           "(without a zone: UTC). Default: now.")
    notes: PlainText | None = Field(default=None, max_length=8000, description="The inspector's notes.")
    scan_ids: list[str] = Field(default_factory=list, max_length=500,
                                description="Scans made during the visit, to file under it now.")


class InspectionView(BaseModel):
    """A recorded inspection."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Inspection id.")
    site: str = Field(description="Site visited.")
    enterprise: str | None = Field(default=None, description="Enterprise the site belongs to.")
    inspector: str = Field(description="Name of the API key that opened the inspection.")
    visited_on: dt.datetime = Field(description="When the visit took place (UTC).")
    notes: str | None = Field(default=None, description="The inspector's notes.")
    created_at: dt.datetime = Field(description="When the inspection was recorded (UTC).")
    scan_ids: list[str] = Field(description="Scans filed under it, in filing order.")


class InspectionDetail(InspectionView):
    """An inspection with its scans, the reviews of their findings, and the rectifications they opened."""

    scans: list[ScanResponse] = Field(description="The scans, as they were answered, in filing order.")
    reviews: list[ReviewResponse] = Field(description="Reviews of the scans' findings, oldest first.")
    rectifications: list[RectificationView] = Field(description="Rectifications of its confirmed hazards.")


class InspectionList(BaseModel):
    """Inspections, latest visit first."""

    model_config = ConfigDict(extra="forbid")

    inspections: list[InspectionView] = Field(description="The inspections that match the filters.")


class InspectionFilter(BaseModel):
    """Which inspections to list."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, max_length=200, description="Only visits of this site.")
    enterprise: str | None = Field(default=None, max_length=200, description="Only this enterprise's.")
    since: UtcDatetime | None = Field(default=None, description="Only visits at or after this time.")
    until: UtcDatetime | None = Field(default=None, description="Only visits before this time.")
    limit: int = Field(default=50, ge=1, le=500, description="Most inspections to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Inspections to skip, for paging.")


class FileScansRequest(BaseModel):
    """Scans to file under an inspection."""

    model_config = ConfigDict(extra="forbid")

    scan_ids: list[str] = Field(min_length=1, max_length=500, description="Scan ids from POST /v1/scans; a scan "
                                "filed under this inspection already is left as it is.")
