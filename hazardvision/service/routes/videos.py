"""/v1/videos: video files uploaded for analysis in the background, their progress and hazard events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse

from hazardvision.access import KeyRecord, Role
from hazardvision.service.deps import RuntimeDep, VideosKey
from hazardvision.service.middleware import VIDEOS_PATH
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.videos import VideoFields, VideoJob, VideoJobCreated, VideoJobList, VideoQuery
from hazardvision.service.uploads import with_fields
from hazardvision.service.video_uploads import VIDEO_FIELD, receive_video
from hazardvision.video.sources import VIDEO_SUFFIXES

router = APIRouter(tags=["videos"], responses=responses())

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Video job id, from POST /v1/videos.")]
_VIDEO = {"type": "string", "format": "binary", "description": f"The video: {', '.join(VIDEO_SUFFIXES)}."}
_FIELDS = {name: {"type": "string", "description": VideoFields.model_fields[name].description}
           for name in ("camera", "site", "enterprise")} | {
    "fps": {"type": "number", "description": VideoFields.model_fields["fps"].description}}
_VIDEO_BODY: dict[str, Any] = {"requestBody": {
    "required": True, "description": f"The video as multipart/form-data (file field '{VIDEO_FIELD}', fields camera, "
    "site, enterprise, fps) or as a raw video/* body (the fields as query parameters).",
    "content": {"multipart/form-data": {"schema": {"type": "object", "required": [VIDEO_FIELD],
                                                   "properties": {VIDEO_FIELD: _VIDEO, **_FIELDS}}},
                "video/*": {"schema": _VIDEO}}}}


def _owner(key: KeyRecord) -> str | None:
    """Whose jobs a key sees: its own, or (an admin) everyone's."""
    return None if key.role is Role.ADMIN else key.name


@router.post(VIDEOS_PATH, response_model=VideoJobCreated, status_code=202, openapi_extra=_VIDEO_BODY,
             responses=responses(413, 415), summary="Upload a video for analysis")
async def post_video(request: Request, runtime: RuntimeDep, key: VideosKey,
                     query: Annotated[VideoQuery, Query()]) -> VideoJobCreated:
    """Stream the video to disk (within max_video_bytes) and queue its analysis; poll the job's URL."""
    jobs = runtime.videos
    arrived = await receive_video(request, jobs.incoming, filename=query.filename)
    try:
        fields = with_fields(VideoFields, query, arrived.fields, exclude={"filename"})
    except BaseException:
        arrived.path.unlink(missing_ok=True)
        raise
    row = await runtime.offload(jobs.submit, arrived, camera=fields.camera, site=fields.site,
                                enterprise=fields.enterprise, fps=fields.fps, actor=key.name)
    return VideoJobCreated(job_id=row.id, status="queued", url=f"{VIDEOS_PATH}/{row.id}")


@router.get(VIDEOS_PATH, response_model=VideoJobList, summary="List video jobs")
async def list_videos(runtime: RuntimeDep, key: VideosKey,
                      status: Annotated[str | None, Query(pattern=r"^(queued|running|done|failed|cancelled)$",
                                                          description="Only jobs in this status.")] = None,
                      limit: Annotated[int, Query(ge=1, le=500, description="Most jobs to list.")] = 50,
                      offset: Annotated[int, Query(ge=0, le=1_000_000, description="Jobs to skip (paging).")] = 0
                      ) -> VideoJobList:
    """The key's jobs (an admin's: everyone's), newest first, without their events."""
    rows = await runtime.offload(runtime.videos.records.jobs, owner=_owner(key), status=status, limit=limit,
                                 offset=offset)
    return VideoJobList(jobs=[runtime.videos.view(row, event_count=count, events=False) for row, count in rows])


@router.get(VIDEOS_PATH + "/{job_id}", response_model=VideoJob, responses=responses(404),
            summary="A video job's status, progress and events")
async def get_video(job_id: JobId, runtime: RuntimeDep, key: VideosKey) -> VideoJob:
    """Status, progress (frames, seconds of video done of its total, an ETA), the events found so far, and the
    error of a failed or damaged video."""
    row = await runtime.offload(runtime.videos.get, job_id, owner=_owner(key))
    return runtime.videos.view(row)


@router.get(VIDEOS_PATH + "/{job_id}/events/{number}/snapshot", response_class=FileResponse,
            responses={**responses(404), 200: {"content": {"image/jpeg": {}}, "description": "The best frame."}},
            summary="An event's best frame")
async def get_snapshot(job_id: JobId, number: Annotated[int, Path(ge=1, description="The event's number.")],
                       runtime: RuntimeDep, key: VideosKey) -> FileResponse:
    """The event's best frame as JPEG, its hazard boxed."""
    path = await runtime.offload(runtime.videos.snapshot, job_id, number, owner=_owner(key))
    return FileResponse(path, media_type="image/jpeg")


@router.post(VIDEOS_PATH + "/{job_id}/cancel", response_model=VideoJob, responses=responses(404, 409),
             summary="Cancel a video job")
async def cancel_video(job_id: JobId, runtime: RuntimeDep, key: VideosKey) -> VideoJob:
    """Stop a queued or running job (audited); the events found by then are kept."""
    await runtime.offload(runtime.videos.cancel, job_id, owner=_owner(key), actor=key.name)
    row = await runtime.offload(runtime.videos.get, job_id, owner=None)
    return runtime.videos.view(row)
