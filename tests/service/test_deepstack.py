"""The DeepStack API, driven by the real clients: deepstack-python (Home Assistant's) and Frigate's request."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from tests.conftest import test_photos
from tests.service.client_envs import client_python, run_client
from tests.service.conftest import LiveServer, live_server

DEEPSTACK_PYTHON = ["deepstack-python==0.8", "pillow"]  # 0.8: the version Home Assistant pins
FRIGATE_LABELS = {"helmet": "hard_hat", "no_helmet": "no_hard_hat", "vest": "vest", "no_vest": "no_vest"}
FRIGATE_CAP = 2
FRIGATE_THRESHOLD = 0.4
FRIGATE = {"labels": FRIGATE_LABELS, "min_confidence": FRIGATE_THRESHOLD, "max_predictions": FRIGATE_CAP,
           "record": "summary", "summary_seconds": 1}
HOME_ASSISTANT_CONFIDENCE = 0.1  # what Home Assistant's deepstack integration sends; it filters on its side

# Home Assistant's way: deepstack-python's DeepstackObject, one photo after another.
HOME_ASSISTANT = """
import json, sys
from deepstack.core import DeepstackObject
args = json.load(sys.stdin)
detector = DeepstackObject(ip="127.0.0.1", port=args["port"], api_key=args["api_key"], timeout=60,
                           min_confidence=args["min_confidence"], custom_model=args["model"])
answers = []
for path in args["photos"]:
    with open(path, "rb") as photo:
        answers.append(detector.detect(photo.read()))
print(json.dumps(answers))
"""

# Frigate's deepstack detector plugin: its request, and how it reads the answer (until a prediction under 0.4 or
# with a label its labelmap lacks, into room for 20).
FRIGATE_PLUGIN = """
import json, sys
import requests
args = json.load(sys.stdin)
with open(args["photo"], "rb") as photo:
    image_bytes = photo.read()
response = requests.post(args["url"], data={"api_key": args["api_key"]}, files={"image": image_bytes}, timeout=5)
answer = response.json()
read = []
for detection in answer.get("predictions") or []:
    if detection["confidence"] < 0.4 or detection["label"] not in args["labelmap"]:
        break
    read.append(detection)
assert len(read) <= 20
print(json.dumps({"status": response.status_code, "answer": answer, "read": read}))
"""


@pytest.fixture(scope="module")
def deepstack_python() -> Path:
    return client_python("deepstack-python", DEEPSTACK_PYTHON)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("deepstack"), client_profiles={"frigate": FRIGATE}) as running:
        yield running


@pytest.fixture(scope="module")
def frigate_key(server: LiveServer) -> str:
    """The key of a Frigate camera: its profile (settings) names it."""
    bank = SampleBank(server.home)
    key = ApiKeys(bank).create("frigate", Role.PIPELINE)[1]
    bank.engine.dispose()
    return key


def parity_photos() -> list[Path]:
    """Real photos of three datasets: workers with and without PPE, fire and smoke, a forklift yard."""
    return [*test_photos("ppe-vest")[:2], test_photos("fire-smoke")[0], test_photos("forklift-person")[0]]


def scan(server: LiveServer, data: bytes, confidence: float | None = None) -> dict[str, Any]:
    fields = {} if confidence is None else {"confidence": str(confidence)}
    with server.client(Role.INSPECTOR) as inspector:
        response = inspector.post("/v1/scans", files={"image": ("photo.jpg", data)}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def assert_same_boxes(predictions: list[dict[str, Any]], objects: list[dict[str, Any]]) -> None:
    """Each scanned object has its prediction (label, confidence, box within 2 px) and nothing else is predicted."""
    assert len(predictions) == len(objects), (predictions, objects)
    unmatched = list(predictions)
    for obj in objects:
        box = obj["box"]
        match = next((p for p in unmatched if p["label"] == obj["class_name"]
                      and abs(p["confidence"] - obj["confidence"]) < 1e-3
                      and max(abs(p["x_min"] - box["x1"]), abs(p["y_min"] - box["y1"]), abs(p["x_max"] - box["x2"]),
                              abs(p["y_max"] - box["y2"])) <= 2), None)
        assert match is not None, f"no prediction like {obj} in {unmatched}"
        unmatched.remove(match)


@pytest.mark.parametrize("model", ["", "site"], ids=["detection", "custom-pack"])
def test_deepstack_python_client_gets_the_boxes_of_a_scan(server, deepstack_python, model):
    photos = parity_photos()
    answers = run_client(deepstack_python, HOME_ASSISTANT, {
        "port": int(server.url.rsplit(":", 1)[1]), "api_key": server.keys[Role.INSPECTOR],
        "min_confidence": HOME_ASSISTANT_CONFIDENCE, "model": model, "photos": [str(p) for p in photos]})
    assert any(answers), "the photos show hazards; some prediction was expected"
    for photo, predictions in zip(photos, answers, strict=True):
        objects = [o for o in scan(server, photo.read_bytes(), HOME_ASSISTANT_CONFIDENCE)["objects"]
                   if not model or o["pack"] == model]
        assert_same_boxes(predictions, objects[:20])  # the default profile sends at most 20
        assert [p["confidence"] for p in predictions] == sorted((p["confidence"] for p in predictions), reverse=True)


def test_deepstack_kept_scan_can_be_read_back_with_its_findings(server, ppe_photos):
    with server.client(None) as anonymous:
        answer = anonymous.post("/v1/vision/detection", data={"api_key": server.keys[Role.INSPECTOR]},
                                files={"image": ("image", ppe_photos[0].read_bytes())}).json()
    with server.client(Role.INSPECTOR) as inspector:
        kept = inspector.get(f"/v1/scans/{answer['scan_id']}").json()
    findings = {f["id"]: f for f in kept["findings"]}
    hazards = [p for p in answer["predictions"] if "hazard" in p]
    assert hazards and all(findings[p["finding_id"]]["hazard"] == p["hazard"] for p in hazards)
    assert kept["context"]["note"] == "via deepstack"


def frigate_photo(photo: Path, folder: Path) -> Path:
    """What Frigate sends: a region of the camera's frame at the model's 320x320, as a JPEG."""
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").resize((320, 320)).save(buffer, "JPEG")
    path = folder / f"{photo.stem}-320.jpg"
    path.write_bytes(buffer.getvalue())
    return path


def test_deepstack_frigate_request_gets_its_labels_sorted_and_capped(server, deepstack_python, frigate_key, ppe_photos,
                                                                     tmp_path):
    seen = 0
    for photo in ppe_photos[:30]:
        sent = frigate_photo(photo, tmp_path)
        shown = [o for o in scan(server, sent.read_bytes())["objects"]
                 if o["class_name"] in FRIGATE_LABELS and o["confidence"] >= FRIGATE_THRESHOLD]
        if len(shown) <= FRIGATE_CAP:
            continue  # the cap would not show
        reply = run_client(deepstack_python, FRIGATE_PLUGIN, {
            "url": f"{server.url}/v1/vision/detection", "api_key": frigate_key, "photo": str(sent),
            "labelmap": sorted(FRIGATE_LABELS.values())})
        assert reply["status"] == 200 and reply["answer"]["success"] is True
        predictions = reply["answer"]["predictions"]
        assert len(predictions) == FRIGATE_CAP
        assert reply["read"] == predictions  # Frigate reads every one: none under 0.4, none it cannot name
        confidences = [p["confidence"] for p in predictions]
        assert confidences == sorted(confidences, reverse=True)
        assert confidences == [o["confidence"] for o in shown[:FRIGATE_CAP]]
        assert [p["label"] for p in predictions] == [FRIGATE_LABELS[o["class_name"]] for o in shown[:FRIGATE_CAP]]
        assert "scan_id" not in reply["answer"]  # a camera's requests are not kept as scans
        seen += 1
        if seen == 2:
            break
    assert seen == 2, "no two photos among the first 30 with more objects than the cap"
    time.sleep(1.1)  # the summary period (1 s) is over: the next request writes its audit summary
    with server.client(None) as anonymous:
        assert anonymous.post("/v1/vision/detection", data={"api_key": frigate_key},
                              files={"image": ("image", sent.read_bytes())}).status_code == 200
    records = AuditLog.at(server.home).records(action="scan")
    assert not [r for r in records if r.actor == "frigate" and r.action == "scan"]
    summaries = [r for r in records if r.actor == "frigate" and r.action == "scan.summary"]
    assert summaries and all(r.details["protocol"] == "deepstack" and r.details["photos"] >= 1 for r in summaries)


def test_deepstack_min_confidence_under_the_profile_threshold_is_raised_to_it(server, frigate_key, ppe_photos):
    with server.client(None) as anonymous:
        answer = anonymous.post("/v1/vision/detection", files={"image": ("image", ppe_photos[0].read_bytes())},
                                data={"api_key": frigate_key, "min_confidence": "0.05"}).json()
    assert answer["success"] and all(p["confidence"] >= FRIGATE_THRESHOLD for p in answer["predictions"])
    assert {p["label"] for p in answer["predictions"]} <= set(FRIGATE_LABELS.values())


def test_deepstack_custom_list_names_the_serving_packs(server):
    with server.client(None) as anonymous:
        answer = anonymous.post("/v1/vision/custom/list", data={"api_key": server.keys[Role.PIPELINE]}).json()
    with server.client(Role.INSPECTOR) as inspector:
        serving = inspector.get("/readyz").json()["models"]
    assert answer == {"success": True, "models": sorted(serving)}


@pytest.mark.parametrize(("path", "fields", "image", "status"), [
    ("/v1/vision/detection", {}, b"", 401),
    ("/v1/vision/detection", {"api_key": "hv_not-a-key"}, b"", 401),
    ("/v1/vision/custom/list", {"api_key": "hv_not-a-key"}, None, 401),
    ("/v1/vision/detection", {"api_key": "inspector"}, None, 400),
    ("/v1/vision/detection", {"api_key": "inspector"}, b"not a photo at all", 400),
    ("/v1/vision/detection", {"api_key": "inspector"}, b"\xff\xd8\xff\xe0 truncated jpeg", 400),
    ("/v1/vision/detection", {"api_key": "inspector", "min_confidence": "high"}, b"", 400),
    ("/v1/vision/detection", {"api_key": "inspector", "min_confidence": "1.5"}, b"", 400),
    ("/v1/vision/custom/no-such-pack", {"api_key": "inspector"}, b"", 404),
    ("/v1/vision/face/recognize", {"api_key": "inspector"}, b"", 404),
], ids=["no-key", "wrong-key", "wrong-key-list", "no-image", "not-an-image", "corrupt-jpeg", "bad-min-confidence",
        "min-confidence-over-1", "unknown-model", "unknown-endpoint"])
def test_deepstack_bad_request_answers_deepstack_error(server, ppe_photos, path, fields, image, status):
    fields = {k: server.keys[Role.INSPECTOR] if v == "inspector" else v for k, v in fields.items()}
    files = None if image is None else {"image": ("image", image or ppe_photos[0].read_bytes())}
    response = httpx.post(server.url + path, data=fields, files=files, timeout=60)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"] and "Traceback" not in body["error"]
    assert set(body) == {"success", "error"}
