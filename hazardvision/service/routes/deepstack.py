"""The DeepStack API (/v1/vision/...): what Frigate, Home Assistant, Blue Iris and CodeProject.AI call.

The key comes in DeepStack's `api_key` form field (or `Authorization: Bearer`); what the client is
sent, and whether its photos are kept as scans, is the key's client profile (settings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from hazardvision.access import KeyRecord, Permission, check
from hazardvision.errors import InvalidUpload
from hazardvision.service.deps import RuntimeDep, address_of, bearer
from hazardvision.service.runtime import ClientScan
from hazardvision.service.schemas.deepstack import (
    PREFIX,
    DeepStackDetection,
    DeepStackError,
    DeepStackModels,
    DeepStackPrediction,
)
from hazardvision.service.uploads import MAX_FORM_FIELDS, Photos, Upload, read_photos

PROTOCOL = "deepstack"
_URLENCODED = "application/x-www-form-urlencoded"
_FORMS = ("multipart/form-data", _URLENCODED)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": DeepStackError, "description": "No photo, a photo that cannot be decoded, or a bad "
          "min_confidence."},
    401: {"model": DeepStackError, "description": "No API key, or an unknown or revoked one."},
    403: {"model": DeepStackError, "description": "The key's role lacks the permission."},
    413: {"model": DeepStackError, "description": "The photo is too large."},
    429: {"model": DeepStackError, "description": "Too many failed keys from this client address; retry after "
          "Retry-After seconds."},
    503: {"model": DeepStackError, "description": "Models are loading, or the request timed out."},
}
router = APIRouter(prefix=PREFIX, tags=["deepstack"], responses=_ERRORS)

_BODY = {"requestBody": {"required": True, "description": "DeepStack's multipart form: the photo and its fields.",
                         "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary", "description": "The photo: JPEG, PNG, WebP, BMP or TIFF."},
        "min_confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "Report every class from "
                           "this confidence up (raised to the key's profile threshold). Default: each class's "
                           "operating threshold."},
        "api_key": {"type": "string", "description": "An API key (hv_...); or send Authorization: Bearer."}}}}}}}


class _Fields(BaseModel):
    """DeepStack's form fields; others (clients send a few of their own) are ignored, as DeepStack does."""

    model_config = ConfigDict(extra="ignore")

    min_confidence: float | None = Field(default=None, ge=0, le=1)


@dataclass(frozen=True)
class DeepStackPhoto:
    """A DeepStack request: its photo, its key, and the confidence it asked for."""

    upload: Upload
    key: KeyRecord
    min_confidence: float | None


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _form_fields(request: Request) -> dict[str, str]:
    """The text fields of a form (a form without a photo: only its key can matter)."""
    try:
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    except HTTPException as error:  # Starlette's answer to a malformed form
        raise InvalidUpload(f"the form cannot be read: {error.detail}") from error
    try:
        return {name: value for name, value in form.items() if isinstance(value, str)}
    finally:
        await form.close()


async def _key(request: Request, runtime: RuntimeDep, fields: dict[str, str],
               credentials: HTTPAuthorizationCredentials | None) -> KeyRecord:
    """The key of the `api_key` form field, else of the Authorization header; 401 without one."""
    record = await runtime.authenticate(fields.get("api_key") or (credentials.credentials if credentials else None),
                                        address_of(request, runtime))
    request.state.key_name = record.name  # for the request log
    return record


async def deepstack_photo(request: Request, runtime: RuntimeDep,
                          credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                          ) -> DeepStackPhoto:
    """The key is checked before the photo, as DeepStack does: a wrong key gets 401 whatever it sent."""
    photos = (Photos([], await _form_fields(request)) if _media(request) == _URLENCODED
              else await read_photos(request, max_files=1, filename=None, required=False))
    key = await _key(request, runtime, photos.fields, credentials)
    check(key, Permission.SCAN)
    if not photos.uploads:
        raise InvalidUpload("No valid image file found: attach the photo as the multipart file field 'image'")
    try:
        fields = _Fields.model_validate({k: v for k, v in photos.fields.items() if v != ""})
    except ValidationError as error:
        raise InvalidUpload(f"Invalid value for min_confidence: {photos.fields.get('min_confidence')!r}; send a "
                            "number from 0 to 1") from error
    return DeepStackPhoto(photos.uploads[0], key, fields.min_confidence)


DeepStackPhotoDep = Annotated[DeepStackPhoto, Depends(deepstack_photo)]


async def models_key(request: Request, runtime: RuntimeDep,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> KeyRecord:
    """The key of a form without a photo (or of the Authorization header) that may read the models."""
    fields = await _form_fields(request) if _media(request) in _FORMS else {}
    key = await _key(request, runtime, fields, credentials)
    check(key, Permission.MODELS_READ)
    return key


def _answer(scan: ClientScan, started: float) -> DeepStackDetection:
    return DeepStackDetection(
        predictions=[DeepStackPrediction(
            label=p.label, confidence=p.confidence, x_min=round(p.box.x1), y_min=round(p.box.y1),
            x_max=round(p.box.x2), y_max=round(p.box.y2), hazard=p.hazard, finding_id=p.finding_id)
            for p in scan.predictions],
        duration=round((time.perf_counter() - started) * 1000), scan_id=scan.scan_id)


@router.post("/detection", response_model=DeepStackDetection, response_model_exclude_none=True,
             openapi_extra=_BODY, summary="Detect with every pack (DeepStack object detection)")
async def detection(photo: DeepStackPhotoDep, runtime: RuntimeDep) -> DeepStackDetection:
    """Every serving pack's detections, as the key's client profile shows them: most confident first, capped."""
    started = time.perf_counter()
    scan = await runtime.scan_for_client(photo.upload, photo.key, PROTOCOL, min_confidence=photo.min_confidence)
    return _answer(scan, started)


@router.post("/custom/list", response_model=DeepStackModels, summary="The custom models: the packs that serve")
async def custom_models(runtime: RuntimeDep, _key: Annotated[KeyRecord, Depends(models_key)]) -> DeepStackModels:
    """Each pack is a DeepStack custom model: POST /v1/vision/custom/{pack}."""
    return DeepStackModels(models=[pack.name for pack in runtime.host.current.packs])


# The pack is read from the path as it is (no validated parameter: DeepStack knows no 422, an unknown pack is 404).
_MODEL = {"parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"},
                          "description": "Pack name, e.g. 'ppe' (POST /v1/vision/custom/list names them)."}]}


@router.post("/custom/{model}", response_model=DeepStackDetection, response_model_exclude_none=True,
             openapi_extra={**_BODY, **_MODEL}, summary="Detect with one pack (a DeepStack custom model)",
             responses={404: {"model": DeepStackError, "description": "No such pack."}})
async def custom(request: Request, photo: DeepStackPhotoDep, runtime: RuntimeDep) -> DeepStackDetection:
    """That pack's detections, as the key's client profile shows them: most confident first, capped."""
    started = time.perf_counter()
    scan = await runtime.scan_for_client(photo.upload, photo.key, PROTOCOL, pack=request.path_params["model"],
                                         min_confidence=photo.min_confidence)
    return _answer(scan, started)

