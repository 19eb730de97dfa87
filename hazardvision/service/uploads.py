"""Photos out of a request: a multipart `image` field (several for a batch) or a raw image/* body.

The body's size is already bounded by the `BodyLimit` middleware; here the form is parsed and
its fields validated like query parameters. A photo is never fetched from a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from hazardvision.errors import InvalidUpload, UnsupportedUpload

IMAGE_FIELDS = ("image", "images")
MAX_FORM_FIELDS = 32
DEFAULT_NAME = "upload"

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Upload:
    """One photo as it arrived."""

    data: bytes
    filename: str


@dataclass(frozen=True)
class Photos:
    """The photos of a request and its form fields (empty for a raw body)."""

    uploads: list[Upload]
    fields: dict[str, str]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_photos(request: Request, *, max_files: int, filename: str | None, required: bool = True) -> Photos:
    """The photos of a multipart form (field `image`, repeatable up to `max_files`) or of a raw image/* body;
    without `required`, a form without a photo is read too (its fields can say who sent it)."""
    media = _media_type(request)
    if media.startswith("image/"):
        data = await request.body()
        return Photos([Upload(data, filename or DEFAULT_NAME)], {})
    if media != "multipart/form-data":
        raise UnsupportedUpload(
            f"the body is {media or 'untyped'}; send the photo as multipart/form-data (field 'image') or as a raw "
            "body with an image/* Content-Type (e.g. image/jpeg)")
    try:
        form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS)
    except HTTPException as error:  # Starlette's answer to a malformed form or too many parts
        raise InvalidUpload(f"the multipart form cannot be read: {error.detail}; at most {max_files} photo(s) "
                            "per request") from error
    uploads: list[Upload] = []
    fields: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in IMAGE_FIELDS:
                    raise InvalidUpload(f"unexpected file field {name!r}; send the photo in the field 'image'")
                uploads.append(Upload(await value.read(), value.filename or filename or DEFAULT_NAME))
            elif name in IMAGE_FIELDS:
                raise InvalidUpload(f"the field {name!r} holds text, not a file; attach the photo as a file")
            elif name in fields:
                raise InvalidUpload(f"the form field {name!r} is given twice")
            else:
                fields[name] = value
    finally:
        await form.close()  # spooled temporary files
    if not uploads and required:
        raise InvalidUpload("no photo in the form; attach it as the file field 'image'")
    if len(uploads) > max_files:
        raise InvalidUpload(f"{len(uploads)} photos sent; at most {max_files} per request")
    return Photos(uploads, fields)


def with_fields(model: type[Model], query: BaseModel, fields: Mapping[str, str], *,
                exclude: set[str] | None = None) -> Model:
    """`model` from the query parameters with the form fields laid over them; a 422 names bad fields."""
    values: dict[str, Any] = query.model_dump(exclude_none=True, exclude=exclude)
    values.update(fields)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("fields", *e["loc"])} for e in error.errors()]) from error
