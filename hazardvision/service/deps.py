"""Dependencies of the routes, as `Annotated` aliases: `RuntimeDep`, `SettingsDep`, `CurrentKey`, `ScanKey`..."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hazardvision.access import CSRF_HEADER, SESSION_COOKIE, KeyRecord, Permission, check
from hazardvision.data.scans import Visibility
from hazardvision.errors import Forbidden
from hazardvision.service.runtime import Runtime
from hazardvision.service.scopes import visibility_of
from hazardvision.service.settings import Settings
from hazardvision.service.sign_ins import client_address

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hv_...` "
                    "(`hazardvision keys create` makes one).")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def address_of(request: Request, runtime: Runtime) -> str:
    """The client's address, as the sign-in limit counts it (setting client_address_header)."""
    return client_address(request, runtime.settings.client_address_header)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def current_key(
    request: Request, runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> KeyRecord:
    """The caller's API key, from its bearer header or the signed-in page's session cookie; 401 when missing,
    unknown, revoked or ended; 403 for a page's write without its CSRF token; 429 after too many failed keys
    from the client's address."""
    token = request.cookies.get(SESSION_COOKIE) if credentials is None else None
    if token:
        signed_in = await runtime.offload(runtime.keys.session, token)
        sent = request.headers.get(CSRF_HEADER, "")
        if request.method not in SAFE_METHODS and not hmac.compare_digest(sent.encode(), signed_in.csrf_token.encode()):
            raise Forbidden(f"a write from the signed-in page needs the session's {CSRF_HEADER} header (GET "
                            "/v1/session gives it); reload the page")
        record = signed_in.key
    else:
        record = await runtime.authenticate(credentials.credentials if credentials else None,
                                            address_of(request, runtime))
    request.state.key_name = record.name  # for the request log
    request.state.signed_in = bool(token)
    return record


def signed_in(request: Request) -> bool:
    """Whether the request came from a signed-in page (its session cookie) rather than a bearer key."""
    return bool(getattr(request.state, "signed_in", False))


CurrentKey = Annotated[KeyRecord, Depends(current_key)]


def permitted(permission: Permission) -> Callable[[KeyRecord], Awaitable[KeyRecord]]:
    """A dependency that lets through keys whose role holds `permission` (403 otherwise)."""
    async def dependency(key: CurrentKey) -> KeyRecord:
        check(key, permission)
        return key
    dependency.__name__ = f"requires_{permission.value.replace('.', '_')}"
    return dependency


_scan_key = permitted(Permission.SCAN)
_review_key = permitted(Permission.REVIEW)
_inspect_key = permitted(Permission.INSPECT)
_alerts_key = permitted(Permission.ALERTS_READ)
ScanKey = Annotated[KeyRecord, Depends(_scan_key)]
ScanDeleteKey = Annotated[KeyRecord, Depends(permitted(Permission.SCANS_DELETE))]
ReviewKey = Annotated[KeyRecord, Depends(_review_key)]


async def _visibility(runtime: Runtime, key: KeyRecord) -> Visibility | None:
    return await runtime.offload(visibility_of, key, runtime.settings.scan_scope, runtime.cameras.records)


async def scan_visibility(runtime: RuntimeDep, key: ScanKey) -> Visibility | None:
    """The scans a key that may scan reads (`service.scopes`); None: every scan."""
    return await _visibility(runtime, key)


async def review_visibility(runtime: RuntimeDep, key: ReviewKey) -> Visibility | None:
    """The scans whose findings and reviews a key that may review reads; None: every scan."""
    return await _visibility(runtime, key)


async def inspect_visibility(runtime: RuntimeDep,
                             key: Annotated[KeyRecord, Depends(_inspect_key)]) -> Visibility | None:
    """The inspections and rectifications a key that may inspect reads and changes; None: every one."""
    return await _visibility(runtime, key)


async def alerts_visibility(runtime: RuntimeDep,
                            key: Annotated[KeyRecord, Depends(_alerts_key)]) -> Visibility | None:
    """The alerts (and their snapshots) a key that may read alerts reads; None: every alert."""
    return await _visibility(runtime, key)


async def frames_visibility(runtime: RuntimeDep,
                            key: Annotated[KeyRecord, Depends(permitted(Permission.FRAMES))]) -> Visibility | None:
    """The cameras a key that sends frames reads the settings of (`service.scopes.reads_camera`)."""
    return await _visibility(runtime, key)


ScanScopeDep = Annotated[Visibility | None, Depends(scan_visibility)]
ReviewScopeDep = Annotated[Visibility | None, Depends(review_visibility)]
InspectScopeDep = Annotated[Visibility | None, Depends(inspect_visibility)]
AlertsScopeDep = Annotated[Visibility | None, Depends(alerts_visibility)]
FramesScopeDep = Annotated[Visibility | None, Depends(frames_visibility)]
InspectKey = Annotated[KeyRecord, Depends(_inspect_key)]
FramesKey = Annotated[KeyRecord, Depends(permitted(Permission.FRAMES))]
VideosKey = Annotated[KeyRecord, Depends(permitted(Permission.VIDEOS))]
AlertsKey = Annotated[KeyRecord, Depends(_alerts_key)]
ModelsKey = Annotated[KeyRecord, Depends(permitted(Permission.MODELS_READ))]
ActivateKey = Annotated[KeyRecord, Depends(permitted(Permission.MODELS_ACTIVATE))]
