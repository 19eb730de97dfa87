"""/v1/cases: what the similar cases of a finding point at."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from hazardvision.service.deps import RuntimeDep, ScanKey
from hazardvision.service.schemas.common import responses

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=responses())


@router.get("/{case_id}/thumbnail", response_class=FileResponse, summary="Thumbnail of a similar case",
            responses={**responses(404), 200: {"content": {"image/jpeg": {}}, "description": "A JPEG."}})
async def thumbnail(
    case_id: Annotated[int, Path(ge=1, le=2**62, description="Case id, from a similar case.")],
    annotation: Annotated[int, Query(ge=1, le=2**62, description="Annotation id, from the same similar case.")],
    runtime: RuntimeDep, _key: ScanKey,
) -> FileResponse:
    """The matched box of the case's photo, with a little context; the URL comes in each similar case."""
    path = await runtime.offload(runtime.thumbnail, case_id, annotation)
    return FileResponse(path, media_type="image/jpeg")
