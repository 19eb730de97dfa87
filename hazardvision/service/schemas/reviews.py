"""Reviews: an inspector's verdict on a finding."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.catalogue import Severity
from hazardvision.results import Box, HazardInfo
from hazardvision.service.schemas.common import PlainText


class Decision(StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"


class ReviewRequest(BaseModel):
    """The verdict, and corrections when the finding was right about the hazard but not its class or place."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision = Field(description="confirm: a real hazard (it becomes a case in the sample bank); "
                               "reject: a false alarm (kept as a known false alarm).")
    reviewer: PlainText | None = Field(default=None, min_length=1, max_length=200, description="Who reviewed it "
                                       "(a person's name or id). Default, and always from a signed-in page: the "
                                       "name of the key that sends the review.")
    note: PlainText | None = Field(default=None, max_length=4000, description="The reviewer's note.")
    class_name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$", max_length=100,
                                   description="Corrected catalogue class. Default: the finding's class.")
    box: Box | None = Field(default=None, description="Corrected box, pixels of the photo. Default: the finding's.")


class ReviewResponse(BaseModel):
    """A recorded review."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(description="Review id.")
    finding_id: str = Field(description="The reviewed finding.")
    scan_id: str = Field(description="The scan the finding belongs to.")
    decision: Decision = Field(description="confirm or reject.")
    reviewer: str = Field(description="Who reviewed it.")
    actor: str = Field(description="Name of the API key that sent the review.")
    note: str | None = Field(default=None, description="The reviewer's note.")
    class_name: str = Field(description="Class recorded in the bank (the corrected one, if given).")
    box: Box = Field(description="Box recorded in the bank (the corrected one, if given).")
    corrected: bool = Field(description="Whether the class or box was corrected.")
    case_id: int | None = Field(default=None, description="The sample-bank case of the photo.")
    annotation_id: int | None = Field(
        default=None, description="The bank annotation made: origin 'confirmed' or 'rejected'.")
    created_at: dt.datetime = Field(description="When the review was recorded (UTC).")


class ReviewList(BaseModel):
    """Reviews, newest first."""

    model_config = ConfigDict(extra="forbid")

    reviews: list[ReviewResponse] = Field(description="The reviews that match the filters.")


class ReviewFilter(BaseModel):
    """Which reviews to list."""

    model_config = ConfigDict(extra="forbid")

    scan_id: str | None = Field(default=None, max_length=64, description="Only reviews of this scan.")
    site: str | None = Field(default=None, max_length=200, description="Only reviews of scans at this site.")
    enterprise: str | None = Field(default=None, max_length=200, description="Only reviews of this enterprise's scans.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most reviews to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Reviews to skip, for paging.")


class PendingFinding(BaseModel):
    """A finding waiting for its review."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Finding id: POST /v1/findings/{id}/review.")
    scan_id: str = Field(description="Its scan: GET /v1/scans/{scan_id}.")
    class_name: str = Field(description="Catalogue class.")
    hazard: HazardInfo | None = Field(default=None, description="Hazard details from the catalogue.")
    confidence: float = Field(description="Detector confidence, 0..1.")
    box: Box = Field(description="Where it is in the photo.")
    site: str | None = Field(default=None, description="Site of the scan.")
    enterprise: str | None = Field(default=None, description="Enterprise of the scan.")
    scanned_at: dt.datetime = Field(description="When the photo was scanned (UTC).")


class PendingList(BaseModel):
    """The review queue, newest scan first."""

    model_config = ConfigDict(extra="forbid")

    findings: list[PendingFinding] = Field(description="Findings not yet reviewed that match the filters.")


class PendingFilter(BaseModel):
    """Which findings of the review queue to list."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, max_length=200, description="Only findings of scans at this site.")
    enterprise: str | None = Field(default=None, max_length=200, description="Only this enterprise's.")
    severity: Severity | None = Field(default=None, description="Only hazards of this severity.")
    limit: int = Field(default=50, ge=1, le=500, description="Most findings to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Findings to skip, for paging.")
