"""Which records a key reads and changes (setting `scan_scope`): the one rule behind every read and change of
scans (their photos, findings and reviews), inspections, rectifications and alerts (their snapshots).

`visibility_of` gives each key one `Visibility` (None: everything):
- with `all`, or for an admin key: everything (as before scopes existed);
- an inspector or ml key created without sites: everything, as before scopes existed (they review what the
  service finds);
- any other key (an inspector or ml key created with sites, and every pipeline key: it has no such exception)
  reads what it made, what is at its sites and, a pipeline, what comes from the cameras it owns (the key that
  configured a camera first, `Cameras.owned_by`).

Each kind of record answers "made by", "at which site" and "from which camera" with its own columns:

    record                                       made by                         site               camera
    scan (photo, findings, reviews)              the key that scanned it         its site           its camera
    inspection (and all it holds)                the key that opened it          its site           -
    rectification                                the key that assigned it        its scan's site    -
    alert (and its snapshot)                     the key that sent its frame     - (none)           its camera

A record out of scope answers exactly as an unknown id (404, the same message) for reads and changes alike
(review, acknowledge or give a verdict, file scans, assign, close, verify), and lists leave it out. So:
- An inspection is read whole: its scans, their reviews and rectifications. Hence a key files under it only scans
  it reads itself (another is an unknown scan), and assigns a rectification only to a finding it reads.
- Cameras have no site, so an alert cannot be placed at one: a key created with sites reads only the alerts of
  the frames it sent and of the cameras it owns, which for an inspector or ml key (they neither send frames nor
  configure cameras) is none. A key limited to sites never sees what cannot be placed at them.
- A camera's settings (GET /v1/cameras, GET /v1/cameras/{id}) are read by its owner (and by a key that reads
  everything); a camera nobody owns (never configured, or configured before owners were kept) by every key that
  reads cameras, as any such key may configure it. Another key's camera is left out of the list, and GET of it
  is the same 403 as changing it.
- An alert's sender reads it, also of a camera nobody configured or one deleted since (the sender is kept with
  the alert, schema version 18, filled in from the audit log for earlier alerts). A camera's owner reads all of
  its alerts, as it reads its scans: also those raised before it was deleted and configured again by this key.
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


def reads_camera(visibility: Visibility | None, owner: str | None) -> bool:
    """Whether a key of `visibility` reads the settings of a camera owned by `owner` (None: nobody)."""
    return visibility is None or owner is None or owner == visibility.actor


def readable_scan(archive: ScanArchive, scan_id: str, visibility: Visibility | None) -> StoredScan:
    """The scan, if `visibility` admits it; else `UnknownScan`, as for a scan that does not exist."""
    scan = archive.get(scan_id)
    context = scan.response.context
    if not visible(visibility, actor=scan.actor, site=context.site, camera=context.camera):
        raise UnknownScan(f"no scan {scan_id!r}; scan ids are returned by POST /v1/scans")
    return scan
