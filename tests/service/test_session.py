"""Sign-in through a real server: a key exchanged for an HttpOnly, SameSite=Strict session cookie; writes need
the session's CSRF token; the session ends at sign-out or when its key is revoked; records name the key."""

from __future__ import annotations

import httpx
import pytest

from hazardvision.access import CSRF_HEADER, SESSION_COOKIE, ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from tests.service.conftest import assert_error, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("session-home"), wait_ready=False) as running:
        yield running


def _page(server) -> httpx.Client:
    """A client without a bearer key, keeping cookies the way a page does."""
    return httpx.Client(base_url=server.url, timeout=60)


def _sign_in(page: httpx.Client, key: str) -> dict:
    response = page.post("/v1/session", json={"key": key})
    assert response.status_code == 201, response.text
    return response.json()


def test_session_cookie_is_http_only_strict_and_never_the_key(server):
    with _page(server) as page:
        response = page.post("/v1/session", json={"key": server.keys[Role.INSPECTOR]})
        assert response.status_code == 201, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert server.keys[Role.INSPECTOR] not in cookie and server.keys[Role.INSPECTOR] not in response.text
        body = response.json()
        assert body["name"] == "test-inspector" and body["role"] == "inspector"
        assert "review" in body["permissions"] and "frames" not in body["permissions"]
        assert page.get("/v1/session").json() == body


def test_session_writes_need_the_csrf_token_and_record_the_keys_name(server):
    with _page(server) as page:
        csrf = _sign_in(page, server.keys[Role.INSPECTOR])["csrf_token"]
        assert page.get("/v1/inspections").status_code == 200
        assert_error(page.post("/v1/inspections", json={"site": "dock-9"}), 403, "Forbidden")
        assert_error(page.post("/v1/inspections", json={"site": "dock-9"}, headers={CSRF_HEADER: "forged"}), 403)
        opened = page.post("/v1/inspections", json={"site": "dock-9"}, headers={CSRF_HEADER: csrf})
        assert opened.status_code == 201, opened.text
        assert opened.json()["inspector"] == "test-inspector"


def test_session_of_a_pipeline_key_cannot_review(server):
    with _page(server) as page:
        session = _sign_in(page, server.keys[Role.PIPELINE])
        assert "review" not in session["permissions"]
        denied = page.post("/v1/findings/any/review", json={"decision": "confirm", "reviewer": "x"},
                           headers={CSRF_HEADER: session["csrf_token"]})
        assert_error(denied, 403, "Forbidden")


def test_session_ends_at_sign_out_and_when_its_key_is_revoked(server):
    bank = SampleBank(server.home)
    keys = ApiKeys(bank)
    key = keys.create("short-lived", Role.INSPECTOR)[1]
    with _page(server) as page, _page(server) as other:
        csrf = _sign_in(page, key)["csrf_token"]
        other_csrf = _sign_in(other, key)["csrf_token"]
        signed_out = page.delete("/v1/session", headers={CSRF_HEADER: csrf})
        assert signed_out.status_code == 204 and f'{SESSION_COOKIE}=""' in signed_out.headers["set-cookie"]
        assert_error(page.get("/v1/session"), 401, "Unauthenticated")
        assert other.get("/v1/inspections").status_code == 200  # the other session lives on
        keys.revoke("short-lived")
        assert_error(other.get("/v1/inspections"), 401, "Unauthenticated")
        assert_error(other.post("/v1/inspections", json={"site": "x"}, headers={CSRF_HEADER: other_csrf}), 401)
    bank.engine.dispose()
    actions = [(record.action, record.actor) for record in AuditLog.at(server.home).records()]
    assert ("session.start", "short-lived") in actions and ("session.end", "short-lived") in actions


@pytest.mark.parametrize("body", [{"key": "hv_wrong"}, {"key": ""}, {}, {"key": "x", "role": "admin"}])
def test_session_sign_in_refuses_a_bad_key_or_body(server, body):
    with _page(server) as page:
        response = page.post("/v1/session", json=body)
        assert_error(response, 401 if body.get("key") == "hv_wrong" else 422)
        assert "set-cookie" not in response.headers
