"""Audit summaries of keys whose protocol requests are not kept as scans."""

from __future__ import annotations

from hazardvision.data.audit import AuditLog
from hazardvision.data.database import Database
from hazardvision.service.summaries import ACTION, ScanSummaries
from tests.service.test_profiles import scan_result


def test_scan_summaries_write_one_record_per_key_and_period(tmp_path):
    audit = AuditLog(Database.of_home(tmp_path))
    summaries = ScanSummaries(audit)
    hazard, empty = scan_result(("no_helmet", 0.9), ("helmet", 0.8)), scan_result(("helmet", 0.8))
    assert summaries.add("frigate", "deepstack", hazard, 3600) is None
    assert summaries.add("frigate", "deepstack", empty, 3600) is None
    assert summaries.add("gate", "deepstack", hazard, 3600) is None
    due = summaries.add("frigate", "deepstack", hazard, 0)  # this photo ends the period
    assert due is not None and due.details["photos"] == 3 and due.details["photos_with_findings"] == 2
    assert due.details["findings"] == {"no_helmet": 2}
    summaries.write(due)
    for summary in summaries.pending():  # at shutdown
        summaries.write(summary)
    records = audit.records(action=ACTION)
    assert [(r.actor, r.details["photos"]) for r in records] == [("frigate", 3), ("gate", 1)]
    assert summaries.pending() == []
