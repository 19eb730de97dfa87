"""Which scans a key reads (setting `scan_scope`): the rule behind every read of scans, photos, findings, reviews.

With `own` (the default) an admin key reads every scan; any other key reads the scans it made, those at the
sites it was created with, and (a pipeline) those sent with a camera it owns. An inspector or ml key created
without sites reads every site, as before scopes existed (they review what the service finds); a pipeline key
has no such exception: it reads its own and its cameras' scans. A scan out of scope answers as an unknown one
(404), so that its id says nothing. With `all` every key reads every scan.
"""

from __future__ import annotations

from typing import Literal

from hazardvision.access import KeyRecord, Role
from hazardvision.data.cameras import Cameras
from hazardvision.data.scans import Visibility, visible
from hazardvision.errors import UnknownScan
from hazardvision.service.archive import ScanArchive, StoredScan

ScanScope = Literal["own", "all"]


def visibility_of(key: KeyRecord, scope: ScanScope, cameras: Cameras) -> Visibility | None:
    """The scans `key` reads; None: every scan."""
    if scope == "all" or key.role is Role.ADMIN:
        return None
    if key.role is Role.PIPELINE:
        return Visibility(key.name, frozenset(key.sites), frozenset(cameras.owned_by(owner=key.name)))
    return Visibility(key.name, frozenset(key.sites)) if key.sites else None


def readable_scan(archive: ScanArchive, scan_id: str, visibility: Visibility | None) -> StoredScan:
    """The scan, if `visibility` admits it; else `UnknownScan`, as for a scan that does not exist."""
    scan = archive.get(scan_id)
    context = scan.response.context
    if not visible(visibility, actor=scan.actor, site=context.site, camera=context.camera):
        raise UnknownScan(f"no scan {scan_id!r}; scan ids are returned by POST /v1/scans")
    return scan
