"""/v1/inspections: the scans of one site visit, grouped, and read back with findings, reviews and
rectifications. A key reads and changes the inspections of its scope (`service.scopes`); another answers 404 as an
unknown one does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from hazardvision.service.deps import InspectKey, InspectScopeDep, RuntimeDep
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
async def open_inspection(request: InspectionRequest, runtime: RuntimeDep, key: InspectKey,
                          scope: InspectScopeDep) -> InspectionDetail:
    """A visit to a site; its inspector is the key's name. Scans made during it can be filed now or later; a scan
    the key does not read (setting scan_scope) answers 404 as an unknown one."""
    return await runtime.offload(runtime.inspections.open, request, key.name, scope)


@router.get("", response_model=InspectionList, summary="List inspections")
async def list_inspections(runtime: RuntimeDep, scope: InspectScopeDep,
                           query: Annotated[InspectionFilter, Query()]) -> InspectionList:
    """Latest visit first; by site, enterprise and visit time; of the inspections the key reads (setting
    scan_scope: an admin every one, a key created with sites those at its sites and those it opened)."""
    return InspectionList(inspections=await runtime.offload(runtime.inspections.list, query, scope))


@router.get("/{inspection_id}", response_model=InspectionDetail, responses=responses(404),
            summary="Read an inspection")
async def get_inspection(inspection_id: InspectionId, runtime: RuntimeDep,
                         scope: InspectScopeDep) -> InspectionDetail:
    """Its scans with their findings, the reviews of those findings and the rectifications they opened; 404 for an
    inspection the key does not read."""
    return await runtime.offload(runtime.inspections.get, inspection_id, scope)


@router.post("/{inspection_id}/scans", response_model=InspectionDetail, responses=responses(404, 409),
             summary="File scans under an inspection")
async def file_scans(inspection_id: InspectionId, request: FileScansRequest, runtime: RuntimeDep,
                     key: InspectKey, scope: InspectScopeDep) -> InspectionDetail:
    """A scan belongs to one inspection: one filed under another answers 409. An inspection or a scan the key does
    not read answers 404."""
    return await runtime.offload(runtime.inspections.file_scans, inspection_id, request.scan_ids, key.name, scope)


@router.get("/{inspection_id}/record.pdf", response_class=Response, summary="The inspection record, as PDF",
            responses={**responses(404), 200: {"content": {"application/pdf": {}}, "description": "A PDF."}})
async def get_record(inspection_id: InspectionId, runtime: RuntimeDep, key: InspectKey, scope: InspectScopeDep,
                     lang: Annotated[Language, Query(description="Language of the record: en (English) or zh "
                                                     "(Simplified Chinese).")] = Language.EN) -> Response:
    """The record to file: the visit, each annotated photo, each finding with rule, advice, review and
    rectification, the model versions and the audit head hash. Audited as `inspection.export` (with the
    file's SHA-256). 404 for an inspection the key does not read."""
    record = await export_record(runtime, inspection_id, lang, key.name, scope)
    return Response(record.pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{record.filename}"'})
