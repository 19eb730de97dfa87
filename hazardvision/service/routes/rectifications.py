"""/v1/findings/{id}/rectification and /v1/rectifications: each confirmed hazard followed until its fix is
verified."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from hazardvision.service.deps import InspectKey, RuntimeDep
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.rectifications import (
    RectificationFilter,
    RectificationList,
    RectificationRequest,
    RectificationView,
    VerifyRequest,
)
from hazardvision.service.schemas.scans import ScanContext
from hazardvision.service.uploads import read_photos

router = APIRouter(tags=["rectifications"], responses=responses())

RectificationId = Annotated[str, Path(min_length=1, max_length=64, description="Rectification id.")]
_AFTER_PHOTO: dict[str, Any] = {"requestBody": {"required": True, "description": "The after-photo, as "
    "multipart/form-data (file field 'image') or a raw image/* body.", "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "format": "binary", "description": "The after-photo: JPEG, PNG, WebP, "
                      "BMP or TIFF."}}}},
        "image/*": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/v1/findings/{finding_id}/rectification", response_model=RectificationView, status_code=201,
             responses=responses(404, 409), summary="Set a confirmed hazard's rectification")
async def assign_rectification(
    finding_id: Annotated[str, Path(min_length=1, max_length=64, description="A confirmed finding's id.")],
    request: RectificationRequest, runtime: RuntimeDep, key: InspectKey,
) -> RectificationView:
    """Who fixes it by when; one per finding, and only for a confirmed one (409 otherwise)."""
    return await runtime.offload(runtime.rectifications.assign, finding_id, request, key.name)


@router.get("/v1/rectifications", response_model=RectificationList, summary="List rectifications")
async def list_rectifications(runtime: RuntimeDep, _key: InspectKey,
                              query: Annotated[RectificationFilter, Query()]) -> RectificationList:
    """Earliest deadline first; open, overdue, closed or verified, per enterprise or site."""
    return RectificationList(rectifications=await runtime.offload(runtime.rectifications.list, query))


@router.get("/v1/rectifications/{rectification_id}", response_model=RectificationView, responses=responses(404),
            summary="Read a rectification")
async def get_rectification(rectification_id: RectificationId, runtime: RuntimeDep,
                            _key: InspectKey) -> RectificationView:
    return await runtime.offload(runtime.rectifications.get, rectification_id)


@router.post("/v1/rectifications/{rectification_id}/close", response_model=RectificationView,
             openapi_extra=_AFTER_PHOTO, responses=responses(400, 404, 409, 413, 415),
             summary="Close a rectification with an after-photo")
async def close_rectification(rectification_id: RectificationId, request: Request, runtime: RuntimeDep,
                              key: InspectKey) -> RectificationView:
    """The after-photo is scanned (and recorded as a scan); it passes when no finding of the hazard's class is
    reported. Another inspector then verifies it."""
    open_one = await runtime.offload(runtime.rectifications.get, rectification_id)
    photos = await read_photos(request, max_files=1, filename=None)
    context = ScanContext(site=open_one.site, enterprise=open_one.enterprise,
                          note=f"after-photo of rectification {rectification_id}")
    after = await runtime.scan(photos.uploads[0], context, key.name)
    return await runtime.offload(runtime.rectifications.close, rectification_id, after, key.name)


@router.post("/v1/rectifications/{rectification_id}/verify", response_model=RectificationView,
             responses=responses(404, 409), summary="Verify a closed rectification")
async def verify_rectification(rectification_id: RectificationId, request: VerifyRequest, runtime: RuntimeDep,
                               key: InspectKey) -> RectificationView:
    """By an inspector other than the closer; accepting a failed after-photo needs a reason."""
    return await runtime.offload(runtime.rectifications.verify, rectification_id, request, key.name)
