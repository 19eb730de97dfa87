"""/v1/findings/{id}/rectification and /v1/rectifications: each confirmed hazard followed until its fix is
verified. A key reads and changes the rectifications of its scope (`service.scopes`); another answers 404 as an
unknown one does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from hazardvision.service.deps import InspectKey, InspectScopeDep, RuntimeDep
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
    request: RectificationRequest, runtime: RuntimeDep, key: InspectKey, scope: InspectScopeDep,
) -> RectificationView:
    """Who fixes it by when; one per finding, and only for a confirmed one (409 otherwise). 404 for a finding of a
    scan the key does not read (setting scan_scope)."""
    return await runtime.offload(runtime.rectifications.assign, finding_id, request, key.name, scope)


@router.get("/v1/rectifications", response_model=RectificationList, summary="List rectifications")
async def list_rectifications(runtime: RuntimeDep, scope: InspectScopeDep,
                              query: Annotated[RectificationFilter, Query()]) -> RectificationList:
    """Earliest deadline first; open, overdue, closed or verified, per enterprise or site; of the rectifications
    the key reads (setting scan_scope: an admin every one, a key created with sites those at its sites and those it
    assigned)."""
    return RectificationList(rectifications=await runtime.offload(runtime.rectifications.list, query, scope))


@router.get("/v1/rectifications/{rectification_id}", response_model=RectificationView, responses=responses(404),
            summary="Read a rectification")
async def get_rectification(rectification_id: RectificationId, runtime: RuntimeDep,
                            scope: InspectScopeDep) -> RectificationView:
    """404 for a rectification the key does not read."""
    return await runtime.offload(runtime.rectifications.get, rectification_id, scope)


@router.post("/v1/rectifications/{rectification_id}/close", response_model=RectificationView,
             openapi_extra=_AFTER_PHOTO, responses=responses(400, 404, 409, 413, 415),
             summary="Close a rectification with an after-photo")
async def close_rectification(rectification_id: RectificationId, request: Request, runtime: RuntimeDep,
                              key: InspectKey, scope: InspectScopeDep) -> RectificationView:
    """The after-photo is scanned (and recorded as a scan); it passes when no finding of the hazard's class is
    reported. Another inspector then verifies it. 404 for a rectification the key does not read."""
    open_one = await runtime.offload(runtime.rectifications.get, rectification_id, scope)
    photos = await read_photos(request, max_files=1, filename=None)
    context = ScanContext(site=open_one.site, enterprise=open_one.enterprise,
                          note=f"after-photo of rectification {rectification_id}")
    after = await runtime.scan(photos.uploads[0], context, key.name)
    return await runtime.offload(runtime.rectifications.close, rectification_id, after, key.name, scope)


@router.post("/v1/rectifications/{rectification_id}/verify", response_model=RectificationView,
             responses=responses(404, 409), summary="Verify a closed rectification")
async def verify_rectification(rectification_id: RectificationId, request: VerifyRequest, runtime: RuntimeDep,
                               key: InspectKey, scope: InspectScopeDep) -> RectificationView:
    """By an inspector other than the closer; accepting a failed after-photo needs a reason. 404 for a
    rectification the key does not read."""
    return await runtime.offload(runtime.rectifications.verify, rectification_id, request, key.name, scope)
