"""The OpenAPI document a running server serves: every field and parameter described, every path's methods true."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.service.conftest import live_server

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The document needs no models: no wait for them to load.
    with live_server(tmp_path_factory.mktemp("openapi-home"), wait_ready=False) as running:
        yield running


@pytest.fixture(scope="module")
def spec(server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=60)  # built on first use: seconds on a busy machine
    assert response.status_code == 200, response.text
    return response.json()


def undescribed_properties(schema: dict[str, Any], where: str) -> list[str]:
    """`where.property` for each property of an object schema (and of its inline objects) without a description."""
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if not str(prop.get("description", "")).strip():
            missing.append(f"{where}.{name}")
        for nested in (prop, prop.get("items", {})):
            if "properties" in nested:
                missing += undescribed_properties(nested, f"{where}.{name}")
    return missing


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in METHODS]


def test_openapi_every_component_property_has_a_description(spec):
    components = spec["components"]["schemas"]
    assert {"ScanResponse", "ErrorBody", "ReviewRequest", "CameraConfig", "ActivateResponse"} <= set(components)
    missing = [item for name, schema in components.items() for item in undescribed_properties(schema, name)]
    assert missing == []


def test_openapi_every_operation_parameter_has_a_description(spec):
    found = operations(spec)
    assert len(found) >= 16
    missing = [f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
               for method, path, operation in found for parameter in operation.get("parameters", [])
               if not str(parameter.get("description", "")).strip()]
    assert missing == []


def test_openapi_every_request_body_field_has_a_description(spec):
    missing = []
    for method, path, operation in operations(spec):
        body = operation.get("requestBody")
        if body is None:
            continue
        assert str(body.get("description", "")).strip() or all(
            "$ref" in media["schema"] for media in body["content"].values()), f"{method.upper()} {path}"
        for media_type, media in body["content"].items():
            missing += undescribed_properties(media["schema"], f"{method.upper()} {path} {media_type}")
    assert missing == []


def test_openapi_every_operation_has_a_summary_and_error_bodies(spec):
    for method, path, operation in operations(spec):
        assert str(operation.get("summary", "")).strip(), f"{method.upper()} {path}"
        for status, response in operation["responses"].items():
            assert str(response.get("description", "")).strip(), f"{method.upper()} {path} {status}"
            if status.startswith("4") and path.startswith("/v1/"):
                schema = response["content"]["application/json"]["schema"]
                body = "DeepStackError" if path.startswith("/v1/vision/") else "ErrorBody"  # DeepStack's own
                assert schema == {"$ref": f"#/components/schemas/{body}"}, f"{method.upper()} {path} {status}"


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/v1/inspections/{inspection_id}"), ("post", "/v1/inspections"),
    ("post", "/v1/inspections/{inspection_id}/scans"), ("get", "/v1/inspections/{inspection_id}/record.pdf"),
    ("post", "/v1/findings/{finding_id}/rectification"), ("get", "/v1/rectifications/{rectification_id}"),
    ("post", "/v1/rectifications/{rectification_id}/close"), ("post", "/v1/rectifications/{rectification_id}/verify"),
    ("post", "/v1/alerts/{alert_id}/ack"), ("get", "/v1/alerts/{alert_id}/snapshot"),
])
def test_openapi_a_scoped_route_documents_its_404(spec, method, path):
    # Out of its key's scope (setting scan_scope) a record answers 404 as an unknown one (test_scoped_access.py).
    assert "404" in spec["paths"][path][method]["responses"]


def test_openapi_405_allow_header_lists_the_documented_methods(server, spec):
    # A concrete path may match several templates: /v1/scans/batch is also GET /v1/scans/{scan_id}.
    templates = {re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"): item for path, item in spec["paths"].items()}
    with httpx.Client(base_url=server.url) as client:
        for path in spec["paths"]:
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            response = client.request("PATCH", concrete)
            assert response.status_code == 405, f"{path}: {response.status_code} {response.text}"
            body = response.json()
            assert body["error"] == "MethodNotAllowed" or (path.startswith("/v1/vision/") and body["success"] is False)
            documented = {method.upper() for pattern, item in templates.items() if pattern.match(concrete)
                          for method in item if method in METHODS}
            assert set(response.headers["allow"].split(", ")) == documented, path
