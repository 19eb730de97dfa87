"""The service's side of the audit log: where its key, anchor and witnesses are (settings), and the record
of denied requests, limited per client address so that a flood of them cannot flood the log."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.data.audit_heads import FileWitness, SyslogWitness, Witness
from hazardvision.errors import HazardVisionError
from hazardvision.service.settings import Settings
from hazardvision.service.sign_ins import client_address

log = logging.getLogger(__name__)

DENIED = "request.denied"
LIMITED = "request.denied.limited"
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000
"""Addresses counted at most; past it the one counted longest ago is forgotten (bounded memory)."""


def audit_log(bank: SampleBank, settings: Settings) -> AuditLog:
    """The bank's audit log with the key, anchor and witnesses the settings name."""
    witnesses: list[Witness] = []
    if settings.audit_witness_file is not None:
        witnesses.append(FileWitness(settings.audit_witness_file))
    if settings.audit_witness_syslog:
        witnesses.append(SyslogWitness())
    return AuditLog(bank.database, key_file=settings.audit_key_file, anchor_file=settings.audit_anchor_file,
                    witnesses=witnesses, witness_each_append=settings.audit_witness_seconds == 0)


@dataclass
class _Window:
    started: float
    recorded: int = 0
    left_out: int = 0


class DeniedRequests:
    """Audits 401 and 403 answers: at most `limit` records per client address and minute, then one
    `request.denied.limited`; the next minute's first record says how many were left out. Thread-safe."""

    def __init__(self, audit: AuditLog, limit: int, *, address_header: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.audit = audit
        self.limit = limit
        self.address_header = address_header
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def record_request(self, request: HTTPConnection, status: int, reason: str) -> None:
        """Audit the denial of `request` (call in a thread): its key's name if it had one, else "anonymous"."""
        self.record(address=client_address(request, self.address_header),
                    actor=getattr(request.state, "key_name", None), method=request.scope.get("method", ""),
                    path=request.url.path, status=status, reason=reason)

    def record(self, *, address: str, actor: str | None, method: str, path: str, status: int, reason: str) -> None:
        """Audit one denied request (call in a thread); a failure to audit is logged, the answer stands."""
        if self.limit <= 0:
            return
        with self._lock:
            now = self.clock()
            window = self._windows.get(address)
            earlier = 0
            if window is None or now - window.started >= WINDOW_SECONDS:
                earlier = window.left_out if window is not None else 0
                window = self._windows[address] = _Window(now)
            self._windows.move_to_end(address)
            while len(self._windows) > MAX_ADDRESSES:
                self._windows.popitem(last=False)
            if window.recorded < self.limit:
                window.recorded += 1
                action = DENIED
            else:
                window.left_out += 1
                if window.left_out > 1:
                    return
                action = LIMITED
        details: dict[str, object] = {"address": address, "method": method, "path": path[:500], "status": status}
        if action == DENIED:
            details["reason"] = reason[:500]
            if earlier:
                details["left_out_before"] = earlier
        else:
            details["limit_per_minute"] = self.limit
        try:
            self.audit.append(actor or "anonymous", action, address, details=details)
        except HazardVisionError as error:
            log.warning("a denied request was not audited: %s", error)
