"""The service's words in English and Simplified Chinese: the inspection record's and the page's (served to it as
/app/strings.json).

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
    # the page's (/app)
    "app.title": ("hazardvision", "隐患识别"),
    "app.welcome": ("Choose what to do in the menu above.", "请在上方菜单中选择操作。"),
    "loading": ("Loading…", "加载中…"),
    "lang.switch": ("Switch language", "切换语言"),
    "who": ("{name} ({role})", "{name}（角色：{role}）"),
    "signout": ("Sign out", "退出登录"),
    "role.inspector": ("inspector", "检查员"),
    "role.pipeline": ("video pipeline", "视频接入"),
    "role.ml": ("ML staff", "算法人员"),
    "role.admin": ("administrator", "管理员"),
    "nav.scan": ("Scan a photo", "拍照识别"),
    "nav.queue": ("Review queue", "待复核"),
    "nav.inspections": ("Inspections", "检查记录"),
    "nav.rectifications": ("Rectifications", "隐患整改"),
    "signin.title": ("Sign in", "登录"),
    "signin.key": ("API key", "API 密钥"),
    "signin.hint": ("Your key is checked once and not kept by this page; the session ends when you sign out or "
                    "the key is revoked.", "密钥仅用于本次登录校验，页面不会保存；退出登录或密钥被吊销后会话即结束。"),
    "signin.submit": ("Sign in", "登录"),
    "signin.refused": ("This key is unknown or revoked. Check that it was copied whole.",
                       "密钥无效或已吊销，请检查是否完整复制。"),
    "error.network": ("The service cannot be reached. Check the connection and try again.",
                      "无法连接服务，请检查网络后重试。"),
    "error.too_large": ("The photo is too large: {detail}", "照片过大：{detail}"),
    "error.not_a_photo": ("This file is not a photo the service can read: {detail}",
                          "该文件不是可识别的照片：{detail}"),
    "field.site": ("Site", "场所"),
    "field.enterprise": ("Enterprise", "企业"),
    "field.note": ("Note", "备注"),
    "field.notes": ("Notes", "备注"),
    "field.severity": ("Severity", "隐患等级"),
    "field.inspector": ("Inspector", "检查人"),
    "field.visited": ("Visited", "检查时间"),
    "filter.any": ("any", "全部"),
    "filter.apply": ("Show", "查询"),
    "filter.since": ("From", "起始日期"),
    "filter.until": ("To", "截止日期"),
    "scan.title": ("Scan a site photo", "现场照片识别"),
    "scan.photo": ("Photo (choose a file or take a picture)", "照片（选择文件或拍照）"),
    "scan.progress": ("Upload progress", "上传进度"),
    "scan.submit": ("Scan", "识别"),
    "scan.filed_under": ("New scans are filed under inspection", "新识别结果将归入检查"),
    "scan.result": ("Findings in {source}", "{source} 的识别结果"),
    "scan.findings": ("Findings", "发现的隐患"),
    "scan.findings_count": ("{count} hazards found", "发现 {count} 处隐患"),
    "scan.no_findings": ("No hazard found in this photo.", "该照片未发现隐患。"),
    "scan.photo_alt": ("The scanned photo {source} with its hazards boxed", "已识别照片 {source}，隐患已框出"),
    "scan.boxes": ("{count} hazard boxes; select one to see its finding", "{count} 个隐患框，选择可查看对应隐患"),
    "quality.no_signal": ("No picture: the photo is uniform or noise.", "无有效画面：照片为纯色或噪声。"),
    "quality.view_obstructed": ("The view is obstructed: almost black or blown out.", "画面被遮挡：几乎全黑或过曝。"),
    "quality.frozen": ("The camera repeats one picture.", "摄像头画面冻结。"),
    "finding.confidence": ("confidence {value}%", "置信度 {value}%"),
    "finding.advice": ("How to rectify:", "整改建议："),
    "finding.likely_false_alarm": ("Looks like a false alarm rejected before.", "与此前驳回的误报相似。"),
    "cases.title": ("Similar past cases", "相似历史案例"),
    "cases.none": ("No similar case in the sample bank yet.", "样本库中暂无相似案例。"),
    "cases.alt": ("Similar case {id}", "相似案例 {id}"),
    "cases.score": ("similarity {score}", "相似度 {score}"),
    "review.note": ("Review note", "复核意见"),
    "review.class": ("Correct the hazard class", "更正隐患类别"),
    "review.same_class": ("(as found)", "（不更正）"),
    "review.confirm": ("Confirm hazard", "确认隐患"),
    "review.reject": ("Reject (false alarm)", "驳回（误报）"),
    "review.confirmed": ("Confirmed", "已确认"),
    "review.rejected": ("Rejected", "已驳回"),
    "review.pending": ("not reviewed", "未复核"),
    "review.correct_box": ("Correct the box", "更正隐患框"),
    "review.draw_box": ("Drag on the photo to draw the right box.", "请在照片上拖动画出正确的框。"),
    "review.new_box": ("New box {x1},{y1} to {x2},{y2}", "新框 {x1},{y1} 至 {x2},{y2}"),
    "review.corrected": ("corrected", "已更正"),
    "review.by": ("by {name}, {at}", "复核人 {name}，{at}"),
    "queue.title": ("Findings waiting for review", "待复核的隐患"),
    "queue.empty": ("Nothing is waiting for review.", "暂无待复核的隐患。"),
    "queue.hazard": ("Hazard", "隐患"),
    "queue.confidence": ("Confidence", "置信度"),
    "queue.scanned": ("Scanned", "识别时间"),
    "inspections.title": ("Inspections", "检查记录"),
    "inspections.new": ("Open an inspection", "新建检查"),
    "inspections.open": ("Open", "新建"),
    "inspections.empty": ("No inspection matches.", "没有符合条件的检查记录。"),
    "inspections.scans": ("Photos", "照片数"),
    "inspection.title": ("Inspection at {site}", "{site} 检查"),
    "inspection.by": ("inspector {name}", "检查人 {name}"),
    "inspection.use": ("File new scans here", "将新识别归入此检查"),
    "inspection.current": ("New scans are filed here.", "新识别结果将归入此检查。"),
    "inspection.pdf_en": ("Record (PDF, English)", "记录（PDF，英文）"),
    "inspection.pdf_zh": ("Record (PDF, Chinese)", "记录（PDF，中文）"),
    "inspection.scans": ("{count} photos", "{count} 张照片"),
    "inspection.no_scans": ("No photo is filed under this inspection yet.", "此检查尚无照片。"),
    "rect.hazard": ("Hazard", "隐患"),
    "rect.responsible": ("Responsible", "整改责任方"),
    "rect.deadline": ("Deadline", "整改期限"),
    "rect.status": ("Status", "状态"),
    "rect.actions": ("Next step", "下一步"),
    "rect.assign": ("Set rectification", "下达整改"),
    "rect.after_photo": ("After-photo", "整改后照片"),
    "rect.close": ("Close with this photo", "提交整改照片"),
    "rect.passed": ("The after-photo shows the hazard no more.", "整改后照片中已无该隐患。"),
    "rect.failed": ("The after-photo still shows the hazard.", "整改后照片中仍有该隐患。"),
    "rect.verify": ("Verify", "验收通过"),
    "rect.refuse": ("Refuse", "验收不通过"),
    "rect.override_reason": ("Reason to accept anyway", "仍予通过的理由"),
    "rect.other_verifies": ("Another inspector verifies it.", "须由其他检查员验收。"),
    "rect.none": ("No rectification.", "暂无整改事项。"),
    "rect.open": ("open", "待整改"),
    "rect.overdue": ("overdue", "已逾期"),
    "rect.closed": ("awaiting verification", "待验收"),
    "rect.verified": ("verified", "已验收"),
}


def label(key: str, language: Language, **values: object) -> str:
    """The label `key` in `language`, with `{name}` placeholders filled from `values`."""
    english, chinese = LABELS[key]
    text = chinese if language is Language.ZH else english
    return text.format(**values) if values else text


def localized(text: Text, language: Language) -> str:
    """A catalogue text (hazard name, advice) in `language`."""
    return text.zh if language is Language.ZH else text.en
