"""/v1/scans: scan a photo (or several), read a scan back, see it annotated, delete it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response

from hazardvision.service.deps import RuntimeDep, ScanDeleteKey, ScanKey, ScanScopeDep, SettingsDep
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.scans import BatchResponse, ScanContext, ScanDeletion, ScanQuery, ScanResponse
from hazardvision.service.scopes import readable_scan
from hazardvision.service.uploads import read_photos, with_fields

router = APIRouter(prefix="/v1/scans", tags=["scans"], responses=responses())

_PHOTO = {"type": "string", "format": "binary", "description": "The photo: JPEG, PNG, WebP, BMP or TIFF."}


def _photo_body(many: bool) -> dict[str, Any]:
    fields = {name: {k: v for k, v in spec.items() if k != "title"}
              for name, spec in ScanContext.model_json_schema()["properties"].items()}
    image = {"type": "array", "items": _PHOTO, "description": "The photos, one file part each."} if many else _PHOTO
    form = {"type": "object", "required": ["image"], "properties": {"image": image, **fields},
            "additionalProperties": False}  # an unknown form field gets 422
    return {"requestBody": {"required": True, "description": "The photo as multipart/form-data (file field "
                            "'image', context as form fields) or as a raw image/* body (context as query parameters).",
                            "content": {"multipart/form-data": {"schema": form},
                                        "image/*": {"schema": _PHOTO}}}}


ScanId = Annotated[str, Path(min_length=1, max_length=64, description="Scan id, from POST /v1/scans.")]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
    description="A key the client makes for this request (a UUID, say) and sends again only when it retries it: a "
    "retry of a request that was recorded (its answer lost to a timeout or a dropped connection) gets the same "
    "scan back, with the header `Idempotent-Replayed: true`, instead of a second scan. Keys are per API key; "
    "reusing one for another photo answers 422.")]


@router.post("", response_model=ScanResponse, openapi_extra=_photo_body(False),
             responses=responses(400, 409, 413, 415, 422), summary="Scan one site photo for hazards")
async def create_scan(request: Request, response: Response, *, runtime: RuntimeDep, key: ScanKey,
                      query: Annotated[ScanQuery, Query()], idempotency_key: IdempotencyKey = None) -> ScanResponse:
    """Findings (with rules, advice and similar past cases) and every detected object; the scan is recorded."""
    photos = await read_photos(request, max_files=1, filename=query.filename)
    context = with_fields(ScanContext, query, photos.fields, exclude={"filename"})
    scan, replayed = await runtime.scan_once(photos.uploads[0], context, key.name, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return scan


@router.post("/batch", response_model=BatchResponse, openapi_extra=_photo_body(True),
             responses=responses(409, 413, 415), summary="Scan several photos in one request")
async def create_scans(request: Request, runtime: RuntimeDep, settings: SettingsDep, key: ScanKey,
                       query: Annotated[ScanQuery, Query()]) -> BatchResponse:
    """Each photo gets its recorded scan or its own error; one bad photo does not fail the others."""
    photos = await read_photos(request, max_files=settings.max_batch_images, filename=query.filename)
    context = with_fields(ScanContext, query, photos.fields, exclude={"filename"})
    return await runtime.scan_batch(photos.uploads, context, key.name)


@router.get("/{scan_id}", response_model=ScanResponse, responses=responses(404), summary="Read a recorded scan")
async def get_scan(scan_id: ScanId, runtime: RuntimeDep, scope: ScanScopeDep) -> ScanResponse:
    """The scan as it was answered, with its context; 404 for a scan the key does not read (setting scan_scope: an
    admin reads every scan, another key those it made, of its sites and, a pipeline, of its cameras)."""
    return (await runtime.offload(readable_scan, runtime.archive, scan_id, scope)).response


@router.delete("/{scan_id}", response_model=ScanDeletion, responses=responses(403, 404, 409),
               summary="Delete a scan and its photo (admin)")
async def delete_scan(scan_id: ScanId, runtime: RuntimeDep, key: ScanDeleteKey) -> ScanDeletion:
    """Its photo, result and unreviewed findings go; its reviews stay. 409 naming why for a scan that is kept (filed
    in an inspection, a photo of the sample bank, a rectification not yet verified). Audited as scan.delete."""
    return await runtime.offload(runtime.retention.delete, scan_id, key.name)


@router.get("/{scan_id}/annotated", response_class=Response, summary="The scanned photo with its detections drawn",
            responses={**responses(404), 200: {"content": {"image/jpeg": {}}, "description": "A JPEG."}})
async def get_annotated(scan_id: ScanId, runtime: RuntimeDep, scope: ScanScopeDep) -> Response:
    """Hazards boxed in their severity's colour, other objects in green; 404 for a scan the key does not read."""
    await runtime.offload(readable_scan, runtime.archive, scan_id, scope)
    return Response(await runtime.annotated(scan_id), media_type="image/jpeg")


@router.get("/{scan_id}/photo", response_class=Response, summary="The scanned photo as the service keeps it",
            responses={**responses(404), 200: {"content": {"image/*": {}}, "description": "The photo's bytes."}})
async def get_photo(scan_id: ScanId, runtime: RuntimeDep, scope: ScanScopeDep) -> Response:
    """The uploaded bytes without their EXIF GPS position, unless the service keeps it (its SHA-256 is the scan's
    stored_sha256); the pixels are those uploaded (boxes are in them after the EXIF orientation). 404 for a scan the
    key does not read."""
    scan = await runtime.offload(readable_scan, runtime.archive, scan_id, scope)
    data = await runtime.offload(runtime.archive.photo, scan)
    kind = "jpeg" if scan.image_format in ("JPEG", "MPO") else scan.image_format.lower()
    return Response(data, media_type=f"image/{kind}")
