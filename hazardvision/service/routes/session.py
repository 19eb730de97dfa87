"""/v1/session: sign in with an API key (a session cookie, HttpOnly, SameSite=Strict), see who is signed in,
sign out."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from hazardvision.access import SESSION_COOKIE, Permission, SignedIn, allowed
from hazardvision.service.deps import CurrentKey, RuntimeDep, SettingsDep, address_of
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.session import SessionView, SignInRequest

router = APIRouter(prefix="/v1/session", tags=["session"], responses=responses())


def _view(signed_in: SignedIn) -> SessionView:
    key = signed_in.key
    return SessionView(name=key.name, role=key.role, csrf_token=signed_in.csrf_token, expires_at=signed_in.expires_at,
                       permissions=[permission for permission in Permission if allowed(key.role, permission)])


@router.post("", response_model=SessionView, status_code=201, responses=responses(401),
             summary="Sign in with an API key")
async def sign_in(body: SignInRequest, request: Request, response: Response, runtime: RuntimeDep,
                  settings: SettingsDep) -> SessionView:
    """Sets the session cookie; the key itself is not kept by the page. Audited as `session.start`. Failed sign-ins
    count against the client's address (429 past failed_sign_in_limit)."""
    signed_in = await runtime.sign_in(body.key, address_of(request, runtime),
                                      dt.timedelta(hours=settings.session_hours))
    response.set_cookie(SESSION_COOKIE, signed_in.token, max_age=int(settings.session_hours * 3600), path="/",
                        httponly=True, samesite="strict",
                        secure=settings.secure_cookies or request.url.scheme == "https")
    return _view(signed_in)


@router.get("", response_model=SessionView, responses=responses(401), summary="The signed-in session")
async def current_session(request: Request, runtime: RuntimeDep, _key: CurrentKey) -> SessionView:
    """Who is signed in, the role's permissions and the CSRF token (the page reads them after a reload)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return _view(await runtime.offload(runtime.keys.session, token))


@router.delete("", status_code=204, response_class=Response, summary="Sign out")
async def sign_out(request: Request, runtime: RuntimeDep, _key: CurrentKey) -> Response:
    """Ends the session (audited as `session.end`) and clears its cookie."""
    await runtime.offload(runtime.keys.sign_out, request.cookies.get(SESSION_COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
