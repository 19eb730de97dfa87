"""The inspection record: an inspection with its annotated photos, findings, reviews, rectifications and the
audit head that ties it to the audit log, as a PDF an inspector can file (real text, Chinese included)."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from hazardvision.annotate import SEVERITY_COLOURS
from hazardvision.fonts import CJK_FONT, LATIN_FONT
from hazardvision.results import Finding
from hazardvision.service.i18n import Language, label, localized
from hazardvision.service.schemas.inspections import InspectionDetail
from hazardvision.service.schemas.rectifications import RectificationView
from hazardvision.service.schemas.reviews import ReviewResponse
from hazardvision.service.schemas.scans import ScanResponse

PHOTO_MAX_HEIGHT = 115.0  # mm: a photo and the start of its findings share an A4 page
LABEL_WIDTH = 38.0  # mm
LINE = 5.0  # mm, body text
CELL_PADDING = (1.0, 1.5)  # mm: top and bottom, left and right
GREY = (110, 110, 110)
LABEL_STYLE = FontFace(color=GREY)
CJK_RUN = re.compile(r"[\u3000-\u9fff\uff00-\uffef]{8,}")  # a run of Chinese too long to keep on one line


@dataclass(frozen=True)
class AuditAnchor:
    """Where the audit chain ended when the record was made: its record count and last hash."""

    count: int
    head: str


class _Pages(FPDF):
    """A4 pages in the shipped fonts (Latin first, CJK for what Latin lacks), numbered in the footer."""

    def __init__(self, language: Language, footer_text: str) -> None:
        super().__init__(format="A4", unit="mm")
        self.language = language
        self.footer_text = footer_text
        self.add_font("latin", fname=str(LATIN_FONT))
        self.add_font("cjk", fname=str(CJK_FONT))
        self.set_font("latin", size=9)
        self.set_fallback_fonts(["cjk"])
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=16)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("latin", size=7)
        self.set_text_color(*GREY)
        page = label("record.page", self.language, page=self.page_no(), pages="{nb}")
        self.cell(0, 4, f"{self.footer_text}    {page}", align="C")
        self.set_text_color(0, 0, 0)


def render_record(inspection: InspectionDetail, photos: Mapping[str, bytes], anchor: AuditAnchor,
                  language: Language, *, made_at: dt.datetime) -> bytes:
    """The record as PDF bytes; `photos` holds each scan's annotated JPEG by scan id."""
    pdf = _Pages(language, f"{label('record.title', language)} {inspection.id}")
    pdf.set_title(f"{label('record.title', language)}: {inspection.site}")
    pdf.set_author(inspection.inspector)
    pdf.set_creator("hazardvision")
    pdf.set_lang("zh-CN" if language is Language.ZH else "en")
    pdf.set_creation_date(made_at)
    pdf.add_page()
    _header(pdf, inspection, anchor, made_at)
    reviews = {review.finding_id: review for review in inspection.reviews}
    rectifications = {item.finding_id: item for item in inspection.rectifications}
    for n, scan in enumerate(inspection.scans, 1):
        _photo(pdf, scan, photos[scan.scan_id], n, len(inspection.scans))
        for finding in scan.findings:
            _finding(pdf, finding, reviews.get(finding.id), rectifications.get(finding.id))
    return bytes(pdf.output())


def _header(pdf: _Pages, inspection: InspectionDetail, anchor: AuditAnchor, made_at: dt.datetime) -> None:
    lang = pdf.language
    pdf.set_font(size=18)
    pdf.multi_cell(0, 9, label("record.title", lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(size=9)
    pdf.ln(2)
    findings = [finding for scan in inspection.scans for finding in scan.findings]
    decided = [review.decision.value for review in inspection.reviews]
    summary = (f"{label('record.photos', lang)} {len(inspection.scans)}, {label('record.findings', lang)} "
               f"{len(findings)}: {label('record.confirmed', lang)} {decided.count('confirm')}, "
               f"{label('record.rejected', lang)} {decided.count('reject')}, {label('record.unreviewed', lang)} "
               f"{len(findings) - len(decided)}")
    _fields(pdf, [
        (label("record.inspection_id", lang), inspection.id),
        (label("record.site", lang), inspection.site),
        (label("record.enterprise", lang), inspection.enterprise or "-"),
        (label("record.inspector", lang), inspection.inspector),
        (label("record.visited_on", lang), _time(inspection.visited_on)),
        (label("record.notes", lang), inspection.notes or "-"),
        (label("record.summary", lang), summary),
        (label("record.models", lang), _models(inspection.scans)),
        (label("record.made_at", lang), _time(made_at)),
    ])
    pdf.ln(2)
    _heading(pdf, label("record.audit", lang))
    text = label("record.audit_text", lang, count=anchor.count)
    pdf.multi_cell(0, LINE, text, align="L", wrapmode=_wrap(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(size=8.5)
    pdf.multi_cell(0, LINE + 1, f"{label('record.audit_head', lang)}: {anchor.head}",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(size=9)


def _photo(pdf: _Pages, scan: ScanResponse, jpeg: bytes, n: int, total: int) -> None:
    lang = pdf.language
    scale = min(pdf.epw / scan.image.width, PHOTO_MAX_HEIGHT / scan.image.height)
    width, height = scan.image.width * scale, scan.image.height * scale
    if pdf.get_y() + 30 + height > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(3)
    _heading(pdf, label("record.photo", lang, n=n, total=total))
    taken = _time(scan.context.captured_at) if scan.context.captured_at else "-"
    pdf.set_text_color(*GREY)
    for line in (f"{label('record.scan_id', lang)} {scan.scan_id}    {label('record.taken_at', lang)} {taken}    "
                 f"{label('record.scanned_at', lang)} {_time(scan.created_at)}",
                 f"{label('record.source', lang)} {scan.source}"):
        pdf.multi_cell(0, LINE, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.image(io.BytesIO(jpeg), x=pdf.l_margin + (pdf.epw - width) / 2, w=width, h=height,
              alt_text=f"{label('record.photo', lang, n=n, total=total)}: {scan.source}")
    pdf.ln(2)
    if not scan.findings:
        pdf.multi_cell(0, LINE, label("record.no_findings", lang), align="L", new_x=XPos.LMARGIN,
                       new_y=YPos.NEXT)


def _finding(pdf: _Pages, finding: Finding, review: ReviewResponse | None,
             rectification: RectificationView | None) -> None:
    lang, hazard = pdf.language, finding.hazard
    severity = label(f"severity.{hazard.severity.value}", lang)
    name = localized(hazard.name, lang)
    rows = [
        (label("record.finding", lang), finding.id),
        (label("record.hazard", lang), f"{name} ({hazard.code}, {finding.class_name})"),
        (label("record.severity", lang), severity),
        (label("record.confidence", lang), f"{finding.confidence:.0%}"),
        (label("record.rules", lang), "\n".join(f"{rule.ref}: {rule.summary}" for rule in hazard.rules) or "-"),
        (label("record.advice", lang), localized(hazard.advice, lang)),
        (label("record.review", lang), _review(review, lang)),
        (label("record.rectification", lang), _rectification(rectification, lang)),
    ]
    height = 2 * LINE + _fields_height(pdf, rows)
    if pdf.get_y() + height > pdf.page_break_trigger and height < pdf.eph:  # keep a finding on one page
        pdf.add_page()
    pdf.ln(1.5)
    blue, green, red = SEVERITY_COLOURS[hazard.severity]
    pdf.set_fill_color(red, green, blue)
    pdf.set_text_color(255, 255, 255)
    pdf.cell(pdf.get_string_width(severity) + 4, LINE + 1, severity, fill=True, new_x=XPos.RIGHT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_font(size=10.5)
    pdf.multi_cell(0, LINE + 1, f"  {name}", align="L", wrapmode=_wrap(name), new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    pdf.set_font(size=9)
    _fields(pdf, rows)


def _review(review: ReviewResponse | None, lang: Language) -> str:
    if review is None:
        return label("record.unreviewed", lang)
    text = label("record.reviewed", lang, decision=label(f"decision.{review.decision.value}", lang),
                 reviewer=review.reviewer, actor=review.actor, at=_time(review.created_at))
    if review.corrected:
        text += f"; {label('record.corrected_to', lang, class_name=review.class_name)}"
    return f"{text}\n{review.note}" if review.note else text


def _rectification(item: RectificationView | None, lang: Language) -> str:
    if item is None:
        return label("record.no_rectification", lang)
    status = "overdue" if item.overdue else item.status.value
    lines = [f"{label('record.status', lang)}: {label(f'status.{status}', lang)}",
             f"{label('record.responsible', lang)}: {item.responsible}",
             f"{label('record.deadline', lang)}: {_time(item.deadline)}"]
    if item.note:
        lines.append(item.note)
    if item.after_scan_id:
        passed = label("record.after_passed" if item.after_passed else "record.after_failed", lang)
        lines.append(f"{label('record.after_photo', lang)}: {label('record.scan_id', lang)} {item.after_scan_id}, "
                     f"{passed}")
    if item.closed_by and item.closed_at:
        lines.append(f"{label('record.closed_by', lang)}: {item.closed_by}, {_time(item.closed_at)}")
    if item.verified_by and item.verified_at:
        lines.append(f"{label('record.verified_by', lang)}: {item.verified_by}, {_time(item.verified_at)}")
    if item.override_reason:
        lines.append(f"{label('record.override', lang)}: {item.override_reason}")
    return "\n".join(lines)


def _fields(pdf: _Pages, rows: list[tuple[str, str]]) -> None:
    """Label and value rows, the labels grey in a narrow column."""
    for name, value in rows:  # a table per row: each value wraps in its own way
        with pdf.table(col_widths=(LABEL_WIDTH, pdf.epw - LABEL_WIDTH), width=pdf.epw, first_row_as_headings=False,
                       borders_layout="HORIZONTAL_LINES", text_align="LEFT", v_align="TOP", line_height=LINE,
                       padding=CELL_PADDING, wrapmode=_wrap(value)) as table:
            row = table.row()
            row.cell(name, style=LABEL_STYLE)
            row.cell(value)


def _fields_height(pdf: _Pages, rows: list[tuple[str, str]]) -> float:
    """About how tall `_fields` draws these rows, in mm."""
    width = pdf.epw - LABEL_WIDTH - 2 * CELL_PADDING[1]
    lines = (pdf.multi_cell(width, LINE, value, wrapmode=_wrap(value), dry_run=True, output=MethodReturnValue.LINES)
             for _, value in rows)
    return sum(len(found) * LINE + 2 * CELL_PADDING[0] for found in lines if isinstance(found, list))


def _wrap(text: str) -> WrapMode:
    """Chinese prose has no spaces to break at: wrap it at any character; ids and English only at spaces."""
    return WrapMode.CHAR if CJK_RUN.search(text) else WrapMode.WORD


def _heading(pdf: _Pages, text: str) -> None:
    pdf.set_font(size=12)
    pdf.set_draw_color(*GREY)
    pdf.multi_cell(0, 7, text, border="B", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(size=9)
    pdf.ln(1)


def _models(scans: list[ScanResponse]) -> str:
    refs = dict.fromkeys(f"{ref.pack} {ref.version} ({ref.precision})" for scan in scans for ref in scan.models)
    return ", ".join(refs) or "-"


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
