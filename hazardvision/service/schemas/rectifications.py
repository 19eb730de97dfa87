"""Rectifications: a confirmed hazard's fix, from its deadline to the verified after-photo."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.data.inspection_records import RectificationStatus
from hazardvision.service.schemas.common import PlainText, UtcDatetime


class RectificationRequest(BaseModel):
    """Who rectifies a confirmed hazard, and by when."""

    model_config = ConfigDict(extra="forbid")

    responsible: PlainText = Field(min_length=1, max_length=200,
                                   description="Party responsible for the fix (a person, team or contractor).")
    deadline: UtcDatetime = Field(description="When the fix is due, ISO 8601 (without a zone: UTC).")
    note: PlainText | None = Field(default=None, max_length=4000, description="What is to be done.")


class VerifyRequest(BaseModel):
    """A verifier's decision on a closed rectification."""

    model_config = ConfigDict(extra="forbid")

    accept: bool = Field(description="true: the fix is verified; false: it is not (the rectification opens again "
                         "for a new after-photo).")
    override_reason: PlainText | None = Field(
        default=None, min_length=1, max_length=4000, description="Needed to accept an after-photo whose scan still "
        "reported the hazard's class (a false alarm of the model on the after-photo, say).")


class RectificationView(BaseModel):
    """A rectification and every step it went through."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Rectification id.")
    finding_id: str = Field(description="The confirmed finding it rectifies.")
    scan_id: str = Field(description="The scan of that finding.")
    class_name: str = Field(description="The hazard's class, as confirmed: what the after-photo must not show.")
    site: str | None = Field(default=None, description="Site of the scan.")
    enterprise: str | None = Field(default=None, description="Enterprise of the scan.")
    responsible: str = Field(description="Party responsible for the fix.")
    deadline: dt.datetime = Field(description="When the fix is due (UTC).")
    status: RectificationStatus = Field(description="open (waiting for an after-photo), closed (after-photo sent, "
                                        "waiting for verification) or verified.")
    overdue: bool = Field(description="Still open past its deadline.")
    note: str | None = Field(default=None, description="What is to be done.")
    assigned_by: str = Field(description="API key that opened it.")
    assigned_at: dt.datetime = Field(description="When it was opened (UTC).")
    after_scan_id: str | None = Field(default=None, description="Scan of the after-photo that closed it.")
    after_passed: bool | None = Field(default=None, description="Whether that scan reported no finding of the "
                                      "hazard's class.")
    closed_by: str | None = Field(default=None, description="API key that sent the after-photo.")
    closed_at: dt.datetime | None = Field(default=None, description="When the after-photo was sent (UTC).")
    verified_by: str | None = Field(default=None, description="API key that verified the fix (never the closer).")
    verified_at: dt.datetime | None = Field(default=None, description="When it was verified (UTC).")
    override_reason: str | None = Field(default=None, description="Why a failed after-photo was accepted.")


class RectificationList(BaseModel):
    """Rectifications, earliest deadline first."""

    model_config = ConfigDict(extra="forbid")

    rectifications: list[RectificationView] = Field(description="The rectifications that match the filters.")


class StatusFilter(StrEnum):
    OPEN = "open"
    OVERDUE = "overdue"
    CLOSED = "closed"
    VERIFIED = "verified"


class RectificationFilter(BaseModel):
    """Which rectifications to list."""

    model_config = ConfigDict(extra="forbid")

    enterprise: str | None = Field(default=None, max_length=200, description="Only this enterprise's hazards.")
    site: str | None = Field(default=None, max_length=200, description="Only hazards at this site.")
    status: StatusFilter | None = Field(default=None, description="open, overdue (open past the deadline), closed "
                                        "or verified.")
    finding_id: str | None = Field(default=None, max_length=64, description="Only the rectification of this "
                                   "finding.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most rectifications to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Rectifications to skip, for paging.")
