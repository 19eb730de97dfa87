"""Exporting an inspection record: the inspection, its annotated photos and the audit head, rendered to PDF;
the export is audited with the file's SHA-256, so a filed copy can be checked against the log."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from hazardvision.data.audit import GENESIS, AuditLog
from hazardvision.data.scans import Visibility
from hazardvision.service.i18n import Language
from hazardvision.service.inspection_record import AuditAnchor, render_record
from hazardvision.service.runtime import Runtime


@dataclass(frozen=True)
class ExportedRecord:
    """A rendered inspection record and the file name to save it under."""

    pdf: bytes
    filename: str


def audit_anchor(audit: AuditLog) -> AuditAnchor:
    """Where the audit chain ends now (the genesis hash for a chain never written)."""
    head = audit.chain.head()
    return AuditAnchor(head.count, head.head) if head else AuditAnchor(0, GENESIS)


async def export_record(runtime: Runtime, inspection_id: str, language: Language, actor: str,
                        visibility: Visibility | None = None) -> ExportedRecord:
    """Render the inspection's record in `language` and audit the export as `inspection.export`; an inspection
    `visibility` does not admit is an `UnknownInspection` (`service.scopes`)."""
    inspection = await runtime.offload(runtime.inspections.get, inspection_id, visibility)
    photos = {scan.scan_id: await runtime.annotated(scan.scan_id) for scan in inspection.scans}
    anchor = await runtime.offload(audit_anchor, runtime.audit)
    pdf = await runtime.offload(render_record, inspection, photos, anchor, language, made_at=dt.datetime.now(dt.UTC))
    await runtime.offload(runtime.audit.append, actor, "inspection.export", inspection.id, details={
        "language": language.value, "sha256": hashlib.sha256(pdf).hexdigest(), "bytes": len(pdf),
        "audit_count": anchor.count, "audit_head": anchor.head, "scans": len(inspection.scans),
    })
    name = re.sub(r"[^A-Za-z0-9_-]", "", inspection.id)
    return ExportedRecord(pdf, f"inspection-{inspection.visited_on:%Y%m%d}-{name}-{language.value}.pdf")
