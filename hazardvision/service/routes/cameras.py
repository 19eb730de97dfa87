"""/v1/cameras and /v1/alerts: video frames in, one alert per hazard out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response

from hazardvision.service.deps import AlertsScopeDep, FramesKey, FramesScopeDep, ReviewKey, ReviewScopeDep, RuntimeDep
from hazardvision.service.schemas.cameras import (
    CAMERA_PATTERN,
    TIMESTAMP_RULE,
    AckRequest,
    AlertFilter,
    AlertList,
    AlertView,
    CameraConfig,
    CameraDeleted,
    CameraList,
    CameraReset,
    CameraView,
    FrameFields,
    FrameQuery,
    FrameResponse,
)
from hazardvision.service.schemas.common import responses
from hazardvision.service.uploads import read_photos, with_fields

router = APIRouter(tags=["cameras"], responses=responses())

CameraId = Annotated[str, Path(pattern=CAMERA_PATTERN, description="Camera id: letters, digits and ._:@-.")]
_FRAME = {"type": "string", "format": "binary", "description": "The frame: JPEG, PNG, WebP, BMP or TIFF."}
AlertId = Annotated[str, Path(min_length=1, max_length=64, description="Alert id, from GET /v1/alerts or a frame's "
                                                                      "alerts.")]
_TIMESTAMP = {"type": "number", "description": f"When the frame was taken: {TIMESTAMP_RULE}."}
_FRAME_BODY: dict[str, Any] = {"requestBody": {
    "required": True, "description": "The frame as multipart/form-data (file field 'image', field 'timestamp') or as "
    "a raw image/* body (timestamp as a query parameter).",
    "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                                   "properties": {"image": _FRAME, "timestamp": _TIMESTAMP},
                                                   "additionalProperties": False}},
                "image/*": {"schema": _FRAME}}}}


@router.post("/v1/cameras/{camera_id}/frames", response_model=FrameResponse, openapi_extra=_FRAME_BODY,
             responses=responses(400, 409, 413, 415), summary="Send one video frame")
async def post_frame(camera_id: CameraId, request: Request, runtime: RuntimeDep, key: FramesKey,
                     query: Annotated[FrameQuery, Query()]) -> FrameResponse:
    """Tracked detections of the frame, and the alerts it raised: a hazard alerts once, when it has held."""
    photos = await read_photos(request, max_files=1, filename=f"{camera_id}-frame")
    frame = with_fields(FrameFields, query, photos.fields)
    return await runtime.frame(camera_id, photos.uploads[0], frame.timestamp, key.name)


@router.get("/v1/cameras", response_model=CameraList, summary="List cameras")
async def list_cameras(runtime: RuntimeDep, scope: AlertsScopeDep) -> CameraList:
    """Settings (never a secret) and what this service process has seen of each camera: frames, tracks. Of the
    cameras the key reads (setting scan_scope: an admin every camera, a pipeline those it owns and those nobody
    owns)."""
    return CameraList(cameras=await runtime.camera_statuses(scope))


@router.post("/v1/cameras/{camera_id}/reset", response_model=CameraReset, responses=responses(404),
             summary="Start a camera over")
async def reset_camera(camera_id: CameraId, runtime: RuntimeDep, key: FramesKey) -> CameraReset:
    """Drops its tracks, alert counting and picture state, so a restarted pipeline's timestamps start afresh.
    A configured camera is reset only by the key that configured it first, or an admin (403)."""
    return await runtime.reset_camera(camera_id, key)


@router.put("/v1/cameras/{camera_id}", response_model=CameraView, responses=responses(),
            summary="Set a camera's webhook and alert rule")
async def put_camera(camera_id: CameraId, config: CameraConfig, runtime: RuntimeDep, key: FramesKey) -> CameraView:
    """Applies from the camera's next frame; a new rule starts its alert counting afresh. The camera then belongs
    to the key that configured it first: another key gets 403 (an admin's may). A webhook URL with credentials,
    or to a loopback, private, link-local or metadata address (unless allowed), is refused (422)."""
    return await runtime.configure_camera(camera_id, config, key)


@router.delete("/v1/cameras/{camera_id}", response_model=CameraDeleted, responses=responses(404),
               summary="Delete a camera")
async def delete_camera(camera_id: CameraId, runtime: RuntimeDep, key: FramesKey) -> CameraDeleted:
    """Removes its settings (webhook, rule, tiling) and forgets its tracker; its alerts, their snapshots and its
    failed webhook deliveries are kept for the record. Only the key that configured it first, or an admin, deletes
    a configured camera (403); a camera that was never configured, sent no frames and has no alerts is a 404. A
    frame sent afterwards starts the camera afresh, unconfigured."""
    return await runtime.delete_camera(camera_id, key)


@router.get("/v1/cameras/{camera_id}", response_model=CameraView, responses=responses(),
            summary="A camera's webhook and alert rule")
async def get_camera(camera_id: CameraId, runtime: RuntimeDep, scope: FramesScopeDep) -> CameraView:
    """The secret, and any user:password of its webhook or stream URL, are never shown; with a stream URL, the
    state of its reader (which service process, live or reconnecting, the last error and next retry). A camera
    another key owns is a 403, as for changing it (an admin's key reads every camera)."""
    return await runtime.camera_view(camera_id, scope)


@router.get("/v1/alerts", response_model=AlertList, summary="List alerts")
async def list_alerts(runtime: RuntimeDep, scope: AlertsScopeDep, query: Annotated[AlertFilter, Query()]) -> AlertList:
    """Newest first; filtered by camera, time span, kind, class or hazard code, acknowledgement and verdict; of the
    alerts the key reads (setting scan_scope: an admin every alert, a pipeline those of the frames it sent and of
    the cameras it owns)."""
    found = await runtime.offload(runtime.cameras.alerts, camera_id=query.camera, since=query.since,
                                  until=query.until, acknowledged=query.acknowledged, kind=query.kind,
                                  class_name=query.class_name, hazard=query.hazard, verdict=query.verdict,
                                  limit=query.limit, offset=query.offset, visibility=scope)
    return AlertList(alerts=found)


@router.post("/v1/alerts/{alert_id}/ack", response_model=AlertView, responses=responses(404, 409),
             summary="Acknowledge an alert, or mark it true or false",
             openapi_extra={"requestBody": {"description": "Optional: a JSON object with a note and a verdict."}})
async def acknowledge_alert(alert_id: AlertId, runtime: RuntimeDep, key: ReviewKey, scope: ReviewScopeDep,
                            request: Annotated[AckRequest | None, Body()] = None) -> AlertView:
    """Records who (the key's name) acknowledged it and when, with an optional note; final (again: 409). With
    `"verdict": "false"` (and a note saying why) it marks a false alarm, with `"true"` a real hazard: who, when and
    the note are kept and audited, and an alert nobody acknowledged is acknowledged too. A verdict is given once
    (again: 409), also on an alert acknowledged before without one. 404 for an alert the key does not read."""
    note = request.note if request is not None else None
    verdict = request.verdict if request is not None else None
    return await runtime.offload(runtime.cameras.acknowledge, alert_id, key.name, note, verdict, scope)


@router.get("/v1/alerts/{alert_id}/snapshot", response_class=Response, summary="The frame that raised an alert",
            responses={**responses(404), 200: {"content": {"image/jpeg": {}}, "description": "A JPEG."}})
async def get_snapshot(alert_id: AlertId, runtime: RuntimeDep, scope: AlertsScopeDep) -> Response:
    """The frame as the camera sent it (re-encoded as JPEG if it came in another format); 404 for an alert the key
    does not read."""
    data = await runtime.offload(runtime.cameras.snapshot, alert_id, runtime.settings.max_pixels, scope)
    return Response(data, media_type="image/jpeg")
