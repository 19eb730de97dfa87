"""/v1/inspections: the scans of one site visit, grouped, and read back with findings, reviews and
rectifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from hazardvision.service.deps import InspectKey, RuntimeDep
from hazardvision.service.i18n import Language
from hazardvision.service.record_export import export_record
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.inspections import (
    FileScansRequest,
    InspectionDetail,
    InspectionFilter,
    InspectionList,
    InspectionRequest,
)

router = APIRouter(prefix="/v1/inspections", tags=["inspections"], responses=responses())

InspectionId = Annotated[str, Path(min_length=1, max_length=64, description="Inspection id.")]


@router.post("", response_model=InspectionDetail, status_code=201, responses=responses(404, 409),
             summary="Open an inspection")
async def open_inspection(request: InspectionRequest, runtime: RuntimeDep, key: InspectKey) -> InspectionDetail:
    """A visit to a site; its inspector is the key's name. Scans made during it can be filed now or later."""
    return await runtime.offload(runtime.inspections.open, request, key.name)


@router.get("", response_model=InspectionList, summary="List inspections")
async def list_inspections(runtime: RuntimeDep, _key: InspectKey,
                           query: Annotated[InspectionFilter, Query()]) -> InspectionList:
    """Latest visit first; by site, enterprise and visit time."""
    return InspectionList(inspections=await runtime.offload(runtime.inspections.list, query))


@router.get("/{inspection_id}", response_model=InspectionDetail, responses=responses(404),
            summary="Read an inspection")
async def get_inspection(inspection_id: InspectionId, runtime: RuntimeDep, _key: InspectKey) -> InspectionDetail:
    """Its scans with their findings, the reviews of those findings and the rectifications they opened."""
    return await runtime.offload(runtime.inspections.get, inspection_id)


@router.post("/{inspection_id}/scans", response_model=InspectionDetail, responses=responses(404, 409),
             summary="File scans under an inspection")
async def file_scans(inspection_id: InspectionId, request: FileScansRequest, runtime: RuntimeDep,
                     key: InspectKey) -> InspectionDetail:
    """A scan belongs to one inspection: one filed under another answers 409."""
    return await runtime.offload(runtime.inspections.file_scans, inspection_id, request.scan_ids, key.name)


@router.get("/{inspection_id}/record.pdf", response_class=Response, summary="The inspection record, as PDF",
            responses={**responses(404), 200: {"content": {"application/pdf": {}}, "description": "A PDF."}})
async def get_record(inspection_id: InspectionId, runtime: RuntimeDep, key: InspectKey,
                     lang: Annotated[Language, Query(description="Language of the record: en (English) or zh "
                                                     "(Simplified Chinese).")] = Language.EN) -> Response:
    """The record to file: the visit, each annotated photo, each finding with rule, advice, review and
    rectification, the model versions and the audit head hash. Audited as `inspection.export` (with the
    file's SHA-256)."""
    record = await export_record(runtime, inspection_id, lang, key.name)
    return Response(record.pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{record.filename}"'})
