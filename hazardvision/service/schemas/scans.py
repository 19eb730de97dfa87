"""Scans: what a photo's upload may say about it, and what comes back."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.packs.tiling import TilingMode
from hazardvision.results import ImageInfo, ScanResult
from hazardvision.service.schemas.common import ErrorBody, PlainText, UtcDatetime


class ScanContext(BaseModel):
    """Where and how the photo was taken: query parameters or form fields of the upload."""

    model_config = ConfigDict(extra="forbid")

    site: PlainText | None = Field(default=None, min_length=1, max_length=200,
                                   description="Site the photo was taken at.")
    enterprise: PlainText | None = Field(default=None, min_length=1, max_length=200,
                                   description="Enterprise the site belongs to.")
    camera: PlainText | None = Field(default=None, min_length=1, max_length=200,
                               description="Camera or phone that took the photo.")
    note: PlainText | None = Field(default=None, max_length=4000,
                                   description="The inspector's note about the photo.")
    captured_at: UtcDatetime | None = Field(
        default=None, description="When the photo was taken, ISO 8601; without a zone it is taken as UTC.")
    tiling: TilingMode | None = Field(
        default=None, description="Also look at a large photo in overlapping tiles, for small, distant workers: "
        "on, off, or auto (photos of the pack's auto size and more). Default: each pack's default, chosen on "
        "validation data (see its card). Costs about one model run per tile.")
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="Report every class from this detector confidence up, instead of "
        "from each class's operating threshold (the pack's card). Default: the operating thresholds.")


class ScanQuery(ScanContext):
    """Query parameters of a scan: the context, and a name for a raw image/* body."""

    filename: str | None = Field(
        default=None, min_length=1, max_length=255,
        description="Name of the photo, reported as the result's `source`. Default: the multipart file name, "
        "else 'upload'.")


class ScanResponse(ScanResult):
    """A scan's result, as recorded by the service."""

    # Restated: pydantic leaves out a field's description that repeats its model's docstring.
    image: ImageInfo = Field(description="The decoded photo: its size after EXIF orientation and the SHA-256 of "
                             "the uploaded bytes.")
    scan_id: str = Field(description="Id of the recorded scan: GET /v1/scans/{scan_id}.")
    stored_sha256: str = Field(description="SHA-256 of the photo as the service keeps it: the uploaded bytes "
                               "without their EXIF GPS position (the same as image.sha256 when the photo had none, "
                               "or with HAZARDVISION_KEEP_PHOTO_LOCATION). The pixels are not changed.")
    created_at: dt.datetime = Field(description="When the service recorded the scan (UTC).")
    context: ScanContext = Field(description="The context the upload gave.")


class BatchItem(BaseModel):
    """One photo of a batch: its scan, or why it could not be scanned."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="The photo's file name.")
    status: int = Field(description="The HTTP status this photo alone would have got (200, or a 4xx).")
    scan: ScanResponse | None = Field(default=None, description="The recorded scan, when it succeeded.")
    error: ErrorBody | None = Field(default=None, description="What went wrong, when it failed.")


class BatchResponse(BaseModel):
    """The photos of a batch, in the order they were sent."""

    model_config = ConfigDict(extra="forbid")

    results: list[BatchItem] = Field(description="One entry per photo, in upload order.")


class ScanDeletion(BaseModel):
    """What deleting one scan removed."""

    model_config = ConfigDict(extra="forbid")

    scan_id: str = Field(description="The deleted scan. GET /v1/scans/{scan_id} now answers 404.")
    deleted_at: dt.datetime = Field(description="When it was deleted (UTC).")
    photo_removed: bool = Field(description="Whether its photo file was removed from the scan store; false when "
                                "another scan of the same photo still keeps it (or it was missing already).")
    findings_removed: int = Field(ge=0, description="Its unreviewed findings, removed.")
    findings_kept: int = Field(ge=0, description="Its reviewed findings, kept for their reviews (and "
                               "rectifications), which stay as they were.")


class PurgeReport(BaseModel):
    """What a retention purge deleted, and what it kept."""

    model_config = ConfigDict(extra="forbid")

    cutoff: dt.datetime = Field(description="Scans made and alerts raised before this time (UTC) were purged.")
    dry_run: bool = Field(description="Nothing was deleted: the counts say what a purge would delete.")
    scans_deleted: int = Field(ge=0, description="Scans deleted (see DELETE /v1/scans/{scan_id}).")
    photos_removed: int = Field(ge=0, description="Photo files removed from the scan store.")
    findings_removed: int = Field(ge=0, description="Unreviewed findings of those scans, removed.")
    findings_kept: int = Field(ge=0, description="Reviewed findings of those scans, kept for their reviews.")
    scans_kept: dict[str, list[str]] = Field(
        description="Scans past the cutoff that were kept, by id, with why: filed in an inspection, a photo of the "
        "sample bank, a rectification not yet verified.")
    snapshots_removed: int = Field(ge=0, description="Acknowledged alerts whose frame was forgotten (the alerts "
                                   "stay); unacknowledged alerts keep theirs.")
    frames_removed: int = Field(ge=0, description="Frame files removed (alerts raised on one frame share it).")
    video_jobs_purged: int = Field(default=0, ge=0, description="Finished video jobs (done, failed or cancelled) "
                                   "that ended before the cutoff and lost their files; the jobs and their events "
                                   "stay (GET /v1/videos/{job_id} says when their files went).")
    videos_removed: int = Field(default=0, ge=0, description="Uploaded video files removed.")
    video_snapshots_removed: int = Field(default=0, ge=0, description="Best-frame JPEGs of those jobs' events "
                                         "removed.")
