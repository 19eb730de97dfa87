"""The service's words in English and Simplified Chinese: the inspection record's, and the page's to come.

Hazard names and advice come from the catalogue's own two texts (`Text.en`, `Text.zh`), not from here.
"""

# Chinese punctuation is full-width on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

from enum import StrEnum

from hazardvision.catalogue import Text


class Language(StrEnum):
    EN = "en"
    ZH = "zh"


LABELS: dict[str, tuple[str, str]] = {
    # key: (English, Simplified Chinese)
    "record.title": ("Inspection record", "隐患排查记录"),
    "record.inspection_id": ("Inspection", "检查编号"),
    "record.site": ("Site", "检查场所"),
    "record.enterprise": ("Enterprise", "企业"),
    "record.inspector": ("Inspector", "检查人"),
    "record.visited_on": ("Visited", "检查时间"),
    "record.notes": ("Notes", "备注"),
    "record.made_at": ("Record made", "记录生成时间"),
    "record.summary": ("Summary", "概要"),
    "record.photos": ("Photos", "照片"),
    "record.findings": ("Findings", "隐患"),
    "record.confirmed": ("Confirmed", "已确认"),
    "record.rejected": ("Rejected", "已驳回"),
    "record.unreviewed": ("Not reviewed", "未复核"),
    "record.photo": ("Photo {n} of {total}", "照片 {n} / {total}"),
    "record.scan_id": ("Scan", "扫描编号"),
    "record.source": ("File", "文件"),
    "record.taken_at": ("Taken", "拍摄时间"),
    "record.scanned_at": ("Scanned", "扫描时间"),
    "record.no_findings": ("No hazard found in this photo.", "该照片未发现隐患。"),
    "record.finding": ("Finding", "隐患编号"),
    "record.hazard": ("Hazard", "隐患名称"),
    "record.code": ("Code", "隐患代码"),
    "record.severity": ("Severity", "隐患等级"),
    "record.confidence": ("Confidence", "置信度"),
    "record.rules": ("Rules broken", "违反条款"),
    "record.advice": ("Rectification advice", "整改建议"),
    "record.review": ("Review", "复核"),
    "record.reviewed": ("{decision}, by {reviewer} (key {actor}), {at}",
                        "{decision}，复核人 {reviewer}（密钥 {actor}），{at}"),
    "record.corrected_to": ("corrected to class {class_name}", "更正为类别 {class_name}"),
    "record.rectification": ("Rectification", "整改"),
    "record.responsible": ("Responsible", "责任方"),
    "record.deadline": ("Deadline", "整改期限"),
    "record.status": ("Status", "状态"),
    "record.after_photo": ("After-photo", "整改后照片"),
    "record.after_passed": ("passed: the hazard is no longer reported", "通过：未再检出该隐患"),
    "record.after_failed": ("the hazard is still reported", "仍检出该隐患"),
    "record.closed_by": ("Closed by", "提交整改人"),
    "record.verified_by": ("Verified by", "验收人"),
    "record.override": ("Accepted despite the after-photo, because", "人工放行理由"),
    "record.no_rectification": ("none assigned", "未安排整改"),
    "record.models": ("Model versions", "模型版本"),
    "record.audit": ("Audit log", "审计日志"),
    "record.audit_text": (
        "When this record was made the audit log held {count} records; the hash of the last one (the head of the "
        "chain) is below. The export itself is recorded in the log as inspection.export, with this file's SHA-256; "
        "the command hazardvision audit verify checks the whole chain.",
        "生成本记录时审计日志共有 {count} 条记录，最后一条记录的哈希（链头）如下。本次导出本身也以 inspection.export "
        "记入审计日志，并记录本文件的 SHA-256；可用命令 hazardvision audit verify 校验整条链。"),
    "record.audit_head": ("Audit head hash", "审计链头哈希"),
    "record.page": ("Page {page} of {pages}", "第 {page} 页，共 {pages} 页"),
    "severity.low": ("low", "低"),
    "severity.medium": ("medium", "中"),
    "severity.high": ("high", "高"),
    "severity.critical": ("critical", "重大"),
    "decision.confirm": ("confirmed", "确认为隐患"),
    "decision.reject": ("rejected (false alarm)", "驳回（误报）"),
    "status.open": ("open", "待整改"),
    "status.overdue": ("overdue", "已逾期"),
    "status.closed": ("closed, awaiting verification", "已整改，待验收"),
    "status.verified": ("verified", "已验收"),
}


def label(key: str, language: Language, **values: object) -> str:
    """The label `key` in `language`, with `{name}` placeholders filled from `values`."""
    english, chinese = LABELS[key]
    text = chinese if language is Language.ZH else english
    return text.format(**values) if values else text


def localized(text: Text, language: Language) -> str:
    """A catalogue text (hazard name, advice) in `language`."""
    return text.zh if language is Language.ZH else text.en
