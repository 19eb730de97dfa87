"""Roboflow Inference's V1 protocol, driven by the real `inference-sdk` InferenceHTTPClient."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hazardvision.access import Role
from tests.conftest import bundled_version, test_photos
from tests.service.client_envs import client_python, run_client
from tests.service.conftest import LiveServer, assert_error, live_server

INFERENCE_SDK = ["inference-sdk==1.8.3"]

# What a user of inference-sdk writes: a client, the registry, then infer() on photo paths.
SDK_SCRIPT = """
import json, sys
from inference_sdk import InferenceConfiguration, InferenceHTTPClient
from inference_sdk.http.errors import HTTPCallErrorError
args = json.load(sys.stdin)
client = InferenceHTTPClient(api_url=args["url"], api_key=args["api_key"])
client.configure(InferenceConfiguration(api_key_transport=args["transport"], confidence_threshold=args["confidence"],
                                        client_downsizing_disabled=not args["downsize"]))
try:
    registry = [model.model_id for model in client.list_loaded_models().models]
    one = client.infer(args["photos"][0], model_id=args["model"])
    many = client.infer(args["photos"], model_id=args["model"])
except HTTPCallErrorError as error:
    print(json.dumps({"status": error.status_code, "message": error.api_message}))
    sys.exit(0)
print(json.dumps({"registry": registry, "results": [one, *many]}))
"""


@pytest.fixture(scope="module")
def inference_sdk() -> Path:
    return client_python("inference-sdk", INFERENCE_SDK)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("roboflow")) as running:
        yield running


def photos() -> list[Path]:
    """Real photos of three datasets: workers with and without PPE, fire and smoke, a forklift yard."""
    return [*test_photos("ppe-vest")[:2], test_photos("fire-smoke")[0], test_photos("forklift-person")[0]]


def sdk(server: LiveServer, python: Path, *, model: str, transport: str = "legacy", confidence: float | None = None,
        downsize: bool = False, key: str | None = None, sent: list[Path] | None = None) -> dict[str, Any]:
    return run_client(python, SDK_SCRIPT, {
        "url": server.url, "api_key": key or server.keys[Role.INSPECTOR], "model": model, "transport": transport,
        "confidence": confidence, "downsize": downsize, "photos": [str(p) for p in sent or photos()]})


def scanned_objects(server: LiveServer, photo: Path, pack: str | None, confidence: float | None) -> dict[str, Any]:
    fields = {} if confidence is None else {"confidence": str(confidence)}
    with server.client(Role.INSPECTOR) as inspector:
        scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}, data=fields).json()
    scan["objects"] = [o for o in scan["objects"] if pack is None or o["pack"] == pack][:20]  # the default cap
    return scan


def assert_same_boxes(result: dict[str, Any], scan: dict[str, Any], confidence_tolerance: float = 1e-3,
                      box_tolerance: float = 2) -> None:
    """Each scanned object has its prediction (class, confidence, box within `box_tolerance` px) and nothing else
    is predicted."""
    assert result["image"] == {"width": scan["image"]["width"], "height": scan["image"]["height"]}
    predictions = list(result["predictions"])
    assert len(predictions) == len(scan["objects"]), (predictions, scan["objects"])
    for obj in scan["objects"]:
        box = obj["box"]
        match = next((p for p in predictions if p["class"] == obj["class_name"]
                      and abs(p["confidence"] - obj["confidence"]) <= confidence_tolerance
                      and max(abs(p["x"] - p["width"] / 2 - box["x1"]), abs(p["y"] - p["height"] / 2 - box["y1"]),
                              abs(p["x"] + p["width"] / 2 - box["x2"]),
                              abs(p["y"] + p["height"] / 2 - box["y2"])) <= box_tolerance), None)
        assert match is not None, f"no prediction like {obj} in {predictions}"
        predictions.remove(match)


@pytest.mark.parametrize(("model", "transport", "confidence"), [
    ("site", "legacy", None),
    ("hazardvision", "header", 0.2),
    (f"site/{bundled_version('site')}", "both", None),
], ids=["pack-key-in-query-and-body", "every-pack-bearer-key", "pack-version"])
def test_roboflow_sdk_gets_the_boxes_of_a_scan(server, inference_sdk, model, transport, confidence):
    answer = sdk(server, inference_sdk, model=model, transport=transport, confidence=confidence)
    assert model in answer["registry"]
    pack = None if model == "hazardvision" else "site"
    sent = photos()
    results = answer["results"]  # the first photo alone, then all of them in one call
    assert len(results) == len(sent) + 1 and any(r["predictions"] for r in results)
    for result, photo in zip(results, [sent[0], *sent], strict=True):
        assert_same_boxes(result, scanned_objects(server, photo, pack, confidence))
        assert [p["confidence"] for p in result["predictions"]] == sorted(
            (p["confidence"] for p in result["predictions"]), reverse=True)


def test_roboflow_sdk_downsizing_on_the_client_keeps_the_boxes(server, inference_sdk):
    """The client may shrink a photo to the model's input size and scale the boxes back (a few pixels off: the
    model saw a resampled photo)."""
    sent = photos()[:2]
    answer = sdk(server, inference_sdk, model="site", downsize=True, sent=sent)
    for result, photo in zip(answer["results"][1:], sent, strict=True):
        assert_same_boxes(result, scanned_objects(server, photo, "site", None), confidence_tolerance=0.05,
                          box_tolerance=6)


def test_roboflow_hazard_predictions_carry_their_catalogue_details(server, ppe_photos):
    with server.client(Role.INSPECTOR) as inspector:
        answer = inspector.post("/infer/object_detection", json={"model_id": "site", "image": {
            "type": "base64", "value": base64.b64encode(ppe_photos[0].read_bytes()).decode()}}).json()
        kept = inspector.get(f"/v1/scans/{answer['scan_id']}").json()
    findings = {f["id"]: f for f in kept["findings"]}
    hazards = [p for p in answer["predictions"] if "hazard" in p]
    assert hazards and all(findings[p["detection_id"]]["hazard"] == p["hazard"] for p in hazards)


def test_roboflow_sdk_with_a_wrong_key_gets_401(server, inference_sdk):
    answer = sdk(server, inference_sdk, model="site", key="hv_not-a-key")
    assert answer["status"] == 401 and "unknown API key" in answer["message"]


def _image(data: bytes) -> dict[str, str]:
    return {"type": "base64", "value": base64.b64encode(data).decode()}


@pytest.mark.parametrize(("path", "body", "key", "status"), [
    ("/infer/object_detection", {"model_id": "site", "image": "photo"}, None, 401),
    ("/infer/object_detection", {"model_id": "site", "image": "photo", "api_key": "hv_not-a-key"}, None, 401),
    ("/model/registry", None, "hv_not-a-key", 401),
    ("/infer/object_detection", {"model_id": "no-such-pack", "image": "photo"}, "inspector", 404),
    ("/infer/object_detection", {"model_id": "site/0.0.1", "image": "photo"}, "inspector", 404),
    ("/model/add", {"model_id": "coco/3"}, "inspector", 404),
    ("/infer/object_detection", {"model_id": "site", "image": {"type": "url", "value": "http://127.0.0.1/x.jpg"}},
     "inspector", 422),
    ("/infer/object_detection", {"model_id": "site", "image": {"type": "base64", "value": "not base64!"}},
     "inspector", 400),
    ("/infer/object_detection", {"model_id": "site", "image": "garbage"}, "inspector", 400),
    ("/infer/object_detection", {"model_id": "site", "image": ["photo"] * 17}, "inspector", 422),
    ("/infer/object_detection", {"image": "photo"}, "inspector", 422),
], ids=["no-key", "wrong-key-in-body", "wrong-key-in-query", "unknown-model", "unserved-version", "add-unknown-model",
        "url-image", "bad-base64", "not-an-image", "too-many-images", "no-model-id"])
def test_roboflow_bad_request_answers_an_error_with_a_message(server, ppe_photos, path, body, key, status):
    images = {"photo": _image(ppe_photos[0].read_bytes()), "garbage": _image(b"not a photo at all")}
    if body is not None and isinstance(body.get("image"), str):
        body = {**body, "image": images[body["image"]]}
    elif body is not None and isinstance(body.get("image"), list):
        body = {**body, "image": [images[name] for name in body["image"]]}
    params = {"api_key": server.keys[Role.INSPECTOR] if key == "inspector" else key} if key else {}
    if body is None:
        response = httpx.get(server.url + path, params=params, timeout=60)
    else:
        response = httpx.post(server.url + path, params=params, json=body, timeout=60)
    assert_error(response, status)
