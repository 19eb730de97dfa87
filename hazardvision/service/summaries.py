"""`ScanSummaries`: the audit trail of keys whose protocol requests are not kept as scans.

Such a key (a camera polling several times a second) gets one `scan.summary` audit record per
period instead of one `scan` record per request: how many photos, which findings, which model
versions. A period's record is written by the key's first request after it, or at shutdown.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from hazardvision.data.audit import AuditLog
from hazardvision.results import ScanResult

ACTION = "scan.summary"


@dataclass
class _Period:
    """What one key sent since its last summary."""

    protocol: str
    started: float
    first_at: dt.datetime
    last_at: dt.datetime
    target: str
    photos: int = 0
    photos_with_findings: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    model_versions: dict[str, str] = field(default_factory=dict)

    def record(self) -> tuple[str, dict[str, object]]:
        return self.target, {
            "protocol": self.protocol, "photos": self.photos, "photos_with_findings": self.photos_with_findings,
            "findings": dict(sorted(self.findings.items())), "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat()}


@dataclass(frozen=True)
class Summary:
    """A period's audit record, ready to append."""

    actor: str
    target: str
    details: dict[str, object]
    model_versions: dict[str, str]


class ScanSummaries:
    """Counts per key (and protocol) what was scanned and not kept; hands back a summary once its period is over."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._periods: dict[tuple[str, str, str], _Period] = {}
        self._lock = threading.Lock()

    def add(self, actor: str, protocol: str, result: ScanResult, period_seconds: float, *,
            target: str | None = None) -> Summary | None:
        """Count one scanned photo; the summary of `actor`'s period when this photo ended it. `target`: what the
        photos were scanned for (a Label Studio project), summarised apart; default: the protocol."""
        now, at = time.monotonic(), dt.datetime.now(dt.UTC)
        key = (actor, protocol, target or protocol)
        with self._lock:
            period = self._periods.setdefault(key, _Period(protocol, now, at, at, target or protocol))
            period.photos += 1
            period.photos_with_findings += bool(result.findings)
            period.findings.update(finding.class_name for finding in result.findings)
            period.model_versions.update({model.pack: model.version for model in result.models})
            period.last_at = at
            if now - period.started < period_seconds:
                return None
            del self._periods[key]
        return _summary(actor, period)

    def pending(self) -> list[Summary]:
        """Every unfinished period's summary, emptied (at shutdown)."""
        with self._lock:
            periods, self._periods = self._periods, {}
        return [_summary(actor, period) for (actor, _, _), period in periods.items()]

    def write(self, summary: Summary) -> None:
        """Append the summary to the audit log (blocking: database work)."""
        self.audit.append(summary.actor, ACTION, summary.target, model_versions=summary.model_versions,
                          details=summary.details)


def _summary(actor: str, period: _Period) -> Summary:
    target, details = period.record()
    return Summary(actor, target, details, dict(period.model_versions))
