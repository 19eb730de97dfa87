"""What every error response looks like, and the responses each route documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """The time in UTC; a time without a zone is taken as UTC (SQLite hands times back without one)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except OverflowError as error:  # e.g. year 1 at +08:00 has no UTC time
        raise ValueError("the time is out of range once converted to UTC") from error


UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]
"""A time given with any zone (or none: UTC), kept in UTC."""


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\x00); send plain text")
    return value


PlainText = Annotated[str, AfterValidator(_no_nul)]
"""Text that every database stores as given (PostgreSQL refuses NUL characters)."""


class ErrorBody(BaseModel):
    """An error: what kind, and what to do about it."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="Kind of error, e.g. 'InvalidImage', 'Unauthenticated', 'NotFound', "
                       "'ValidationError'.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="For a 422 on the request's fields: one entry per problem (loc, msg, type).")


_WHAT = {
    400: "The photo cannot be decoded (empty, truncated, not an image).",
    401: "No API key, or an unknown or revoked one.",
    403: "The key's role lacks the permission.",
    404: "No such resource.",
    408: "The request body arrived too slowly.",
    409: "Conflicts with the current state (already reviewed or acknowledged, refused promotion, frame out of "
         "order, a site filed under another enterprise, a scan filed under another inspection, a rectification step "
         "out of order, a scan that is kept: filed in an inspection, a photo of the sample bank, a rectification not "
         "yet verified).",
    413: "The body or the photo's pixel count exceeds the limit.",
    415: "The body is neither multipart/form-data nor image/*.",
    422: "A field is missing or invalid.",
    429: "Too many failed sign-ins from this client address; retry after Retry-After seconds.",
    503: "Models are loading, the request timed out, or storage failed; retry later.",
}
COMMON = (401, 403, 408, 422, 429, 503)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the error responses a route may give, besides the common ones."""
    return {code: {"model": ErrorBody, "description": _WHAT[code]} for code in sorted({*COMMON, *codes})}
