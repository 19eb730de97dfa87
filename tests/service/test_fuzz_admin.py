"""The fuzz (tests/service/fuzzing.py) with the admin's key, and what it found on the admin's operations."""

from __future__ import annotations

import pytest

from hazardvision.access import Role
from tests.service.conftest import assert_error
from tests.service.fuzzing import MODES, PACK, fuzz_every_operation, fuzz_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fuzz_server(tmp_path_factory) as running:
        yield running


@MODES
def test_fuzz_every_operation_answers_as_documented(server, mode):
    fuzz_every_operation(server, Role.ADMIN, mode)


@pytest.mark.parametrize("path", [f"/v1/models/{PACK}/activate", "/v1/findings/f1/review", "/v1/cameras/cam-1"])
def test_fuzz_finding_json_body_not_utf8_is_a_422(server, path):
    """Found by the fuzz: such a body got FastAPI's undocumented 400 'There was an error parsing the body'."""
    with server.client(Role.ADMIN) as admin:
        method = "PUT" if path.startswith("/v1/cameras") else "POST"
        response = admin.request(method, path, content=b'{"version": "\xff\xfe"}',
                                 headers={"Content-Type": "application/json"})
    body = assert_error(response, 422, "ValidationError")
    assert "UTF-8" in body["message"]
