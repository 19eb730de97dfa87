"""Failed sign-ins limited per client address (bearer keys and POST /v1/session), and /metrics behind a key,
through a real server; the limiter's window on its own."""

from __future__ import annotations

import httpx
import pytest

from hazardvision.access import Role
from hazardvision.errors import TooManySignIns
from hazardvision.service.sign_ins import FailedSignIns
from tests.service.conftest import assert_error, live_server

WRONG = "hv_" + "x" * 43


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The client address comes from a header here, as behind a reverse proxy, so that the test can send from
    # several addresses; no test here needs the models.
    with live_server(tmp_path_factory.mktemp("sign-ins-home"), wait_ready=False,
                     client_address_header="X-Forwarded-For") as running:
        yield running


def client(server, key: str | None, address: str) -> httpx.Client:
    headers = {"X-Forwarded-For": f"198.51.100.99, {address}"}  # the last entry is the proxy's
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def test_sign_ins_thirty_wrong_keys_fast_get_429_from_the_eleventh_on(server):
    with client(server, WRONG, "203.0.113.7") as guesser:
        answers = [guesser.get("/v1/cameras") for _ in range(30)]
    assert [a.status_code for a in answers] == [401] * 10 + [429] * 20
    for answer in answers[10:]:
        assert_error(answer, 429, "TooManySignIns")
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
    with client(server, server.keys[Role.PIPELINE], "203.0.113.7") as same_address:
        assert_error(same_address.get("/v1/cameras"), 429, "TooManySignIns")  # even a good key, from there
    with client(server, server.keys[Role.PIPELINE], "203.0.113.8") as elsewhere:
        assert elsewhere.get("/v1/cameras").status_code == 200


def test_sign_ins_count_the_page_sign_in_and_bearer_keys_together(server):
    with client(server, None, "203.0.113.20") as page, client(server, WRONG, "203.0.113.20") as bearer:
        for _ in range(5):
            assert_error(page.post("/v1/session", json={"key": WRONG}), 401)
            assert_error(bearer.get("/v1/cameras"), 401)
        limited = page.post("/v1/session", json={"key": server.keys[Role.INSPECTOR]})
        assert_error(limited, 429, "TooManySignIns")
        assert int(limited.headers["Retry-After"]) >= 1
    with client(server, None, "203.0.113.21") as other:
        assert other.post("/v1/session", json={"key": server.keys[Role.INSPECTOR]}).status_code == 201


def test_sign_ins_requests_without_a_key_are_not_failures(server):
    with client(server, None, "203.0.113.30") as anonymous:
        for _ in range(15):
            assert_error(anonymous.get("/v1/cameras"), 401, "Unauthenticated")
    with client(server, server.keys[Role.PIPELINE], "203.0.113.30") as keyed:
        assert keyed.get("/v1/cameras").status_code == 200


def test_sign_ins_metrics_need_a_key_by_default(server):
    with client(server, None, "203.0.113.40") as anonymous:
        assert_error(anonymous.get("/metrics"), 401, "Unauthenticated")
    with client(server, server.keys[Role.PIPELINE], "203.0.113.40") as keyed:
        metrics = keyed.get("/metrics")
    assert metrics.status_code == 200 and "hazardvision_webhook_deliveries_total" in metrics.text


def test_sign_ins_limiter_forgets_failures_once_the_window_passed():
    now = [1000.0]
    limiter = FailedSignIns(3, 60, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("a")
        limiter.failed("a")
        now[0] += 10
    with pytest.raises(TooManySignIns) as refused:
        limiter.check("a")
    assert refused.value.retry_after == 30  # the first failure, at 1000, leaves the window at 1060
    limiter.check("b")
    now[0] = 1060.5
    limiter.check("a")  # one failure aged out: one more try
    limiter.failed("a")
    with pytest.raises(TooManySignIns):
        limiter.check("a")


def test_sign_ins_limiter_remembers_a_bounded_number_of_addresses():
    limiter = FailedSignIns(1, 60, max_addresses=2)
    for address in ("a", "b", "c"):
        limiter.failed(address)
    limiter.check("a")  # forgotten first
    with pytest.raises(TooManySignIns):
        limiter.check("c")
