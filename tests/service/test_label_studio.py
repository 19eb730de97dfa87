"""Label Studio's ML backend, called as Label Studio calls it, with label-studio-sdk validating the predictions.

A small HTTP server stands in for Label Studio's file host: it serves real photos to the right token
only, redirects one file to another host (which must never be asked), and serves two oversize files.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image

from hazardvision.access import Role
from hazardvision.bank.bank import SampleBank
from hazardvision.bank.label_studio_export import import_export
from hazardvision.catalogue import load_catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.errors import ClassMappingError
from hazardvision.service.app import create_app
from hazardvision.service.settings import Settings
from tests.conftest import served_versions, test_photos
from tests.service.client_envs import client_python, run_client
from tests.service.conftest import LiveServer, assert_error, live_server

LABEL_STUDIO_SDK = ["label-studio-sdk==2.1.2"]  # the newest release; it installs on Python 3.11
TOKEN = "ls-token-5f1c"
MAX_UPLOAD = 1024 * 1024
PROJECT = "7.1764590000"
UNICODE_NAME = "3f2a9b1c-工地 照片.jpg"  # Label Studio keeps an upload's own name, spaces and all
# Labels as a Label Studio project names them: a class, an English name, a spelling, one mapped in settings,
# and one with no class at all.
LABELS = {"Helmet": "helmet", "High-visibility vest worn": "vest", "no-helmet": "no_helmet", "No hi-vis": "no_vest"}
CONFIG = ("<View><Image name=\"image\" value=\"$image\"/><RectangleLabels name=\"label\" toName=\"image\">"
          + "".join(f"<Label value=\"{label}\"/>" for label in [*LABELS, "Ladder"])
          + "</RectangleLabels></View>")

# What Label Studio does: setup, then predict, as its MLApi sends them (requests, HTTP Basic), then the SDK's own
# check of each prediction against the project's config.
LABEL_STUDIO = """
import json, sys
import requests
from requests.auth import HTTPBasicAuth
from label_studio_sdk.label_interface import LabelInterface
args = json.load(sys.stdin)
auth = HTTPBasicAuth("label-studio", args["key"])
health = requests.get(args["url"] + "/health", auth=auth, timeout=60)
setup = requests.post(args["url"] + "/setup", auth=auth, timeout=60, json={
    "project": args["project"], "schema": args["config"], "hostname": args["hostname"],
    "access_token": args["token"], "extra_params": None})
predict = requests.post(args["url"] + "/predict", auth=auth, timeout=300, json={
    "tasks": args["tasks"], "project": args["project"], "label_config": args["config"],
    "params": {"login": None, "password": None, "context": None}})
interface = LabelInterface(args["config"])
results = predict.json().get("results", [])
print(json.dumps({"health": [health.status_code, health.json()], "setup": [setup.status_code, setup.json()],
                  "predict": [predict.status_code, predict.json()],
                  "errors": [interface.validate_prediction(r, return_errors=True) for r in results]}))
"""


@dataclass
class FileHost:
    """A stand-in for Label Studio's file host: its address, the photos it serves, and who asked it for what."""

    url: str
    photos: dict[str, bytes]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """Path and Authorization header of every request."""


def _handler(host: FileHost, other: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the connection closes

        def do_GET(self) -> None:
            host.requests.append((self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Token {TOKEN}":
                self._send(401, b"invalid token")
            elif self.path == "/data/upload/1/moved.jpg":
                self.send_response(302)
                self.send_header("Location", f"{other}/data/upload/1/{next(iter(host.photos))}")
                self.end_headers()
            elif self.path == "/data/upload/1/renamed.jpg":  # a redirect on the same host is followed
                self.send_response(301)
                self.send_header("Location", f"/data/upload/1/{next(iter(host.photos))}")
                self.end_headers()
            elif self.path == "/data/upload/1/huge.png":
                self._send(200, _huge_photo(next(iter(host.photos.values()))))
            elif self.path == "/data/upload/1/huge-undeclared.png":
                self._send(200, _huge_photo(next(iter(host.photos.values()))), declare=False)
            elif self.path.startswith("/data/upload/1/") and unquote(self.path.rsplit("/", 1)[1]) in host.photos:
                self._send(200, host.photos[unquote(self.path.rsplit("/", 1)[1])])
            else:
                self._send(404, b"not found")

        def _send(self, status: int, body: bytes, *, declare: bool = True) -> None:
            self.send_response(status)
            if declare:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _huge_photo(data: bytes) -> bytes:
    """A real photo, upscaled: over the service's upload limit."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").resize((1600, 1600)).save(buffer, "PNG", compress_level=0)
    assert len(buffer.getvalue()) > MAX_UPLOAD
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(datasets: Path) -> list[Path]:
    return test_photos("ppe-vest")[:3]


@pytest.fixture(scope="module")
def hosts(photos: list[Path]) -> Iterator[tuple[FileHost, FileHost]]:
    """Label Studio's file host, and another host it redirects one file to."""
    servers, made = [], []
    other = FileHost("", {})
    served = {p.name: p.read_bytes() for p in photos} | {UNICODE_NAME: photos[0].read_bytes()}
    for host in (other, FileHost("", served)):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(host, other.url))
        # The other host is reached as localhost: another origin than 127.0.0.1, whatever its port.
        name = "localhost" if host is other else "127.0.0.1"
        host.url = f"http://{name}:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        made.append(host)
    yield made[1], made[0]
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("label-studio"), max_upload_bytes=MAX_UPLOAD,
                     label_studio={"labels": {"No hi-vis": "no_vest"}},
                     client_profiles={"test-ml": {"summary_seconds": 0.001}}) as running:
        yield running


@pytest.fixture(scope="module")
def label_studio_sdk() -> Path:
    return client_python("label-studio-sdk", LABEL_STUDIO_SDK)


def basic(key: str, user: str = "label-studio") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def backend(server: LiveServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/label-studio", headers=basic(key or server.keys[Role.ML]),
                        timeout=120)


def task(i: int, image: str) -> dict[str, Any]:
    return {"id": i, "data": {"image": image}, "annotations": [], "predictions": []}


def connect(server: LiveServer, hosts: tuple[FileHost, FileHost], project: str = PROJECT) -> dict[str, Any]:
    with backend(server) as client:
        response = client.post("/setup", json={"project": project, "schema": CONFIG, "hostname": hosts[0].url,
                                               "access_token": TOKEN})
    assert response.status_code == 200, response.text
    return response.json()


def predict(server: LiveServer, tasks: list[dict[str, Any]], project: str = PROJECT) -> dict[str, Any]:
    with backend(server) as client:
        response = client.post("/predict", json={"tasks": tasks, "project": project, "label_config": CONFIG,
                                                 "params": {"login": None, "password": None, "context": None}})
    assert response.status_code == 200, response.text
    return response.json()


def test_label_studio_predictions_pass_label_studio_sdk_and_match_a_scan(server, hosts, photos, label_studio_sdk):
    host, _ = hosts
    tasks = [task(i, f"/data/upload/1/{p.name}") for i, p in enumerate(photos)]
    answer = run_client(label_studio_sdk, LABEL_STUDIO, {
        "url": f"{server.url}/label-studio", "key": server.keys[Role.ML], "project": PROJECT, "config": CONFIG,
        "hostname": host.url, "token": TOKEN, "tasks": tasks})
    version = "+".join(f"{pack}@{v}" for pack, v in sorted(served_versions().items()))
    assert answer["health"] == [200, {"status": "UP", "model_class": "hazardvision", "model_version": version}]
    status, setup = answer["setup"]
    assert status == 200 and setup["model_version"] == version
    assert setup["labels"] == LABELS and setup["unmapped"] == ["Ladder"]
    status, predicted = answer["predict"]
    assert status == 200 and predicted["model_version"] == version
    assert answer["errors"] == [[] for _ in photos], answer["errors"]  # label-studio-sdk finds nothing wrong
    results = predicted["results"]
    assert len(results) == len(photos) and any(r["result"] for r in results)
    for photo, result in zip(photos, results, strict=True):
        assert result["model_version"] == version
        with server.client(Role.INSPECTOR) as inspector:
            scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()
        objects = [o for o in scan["objects"][:20] if o["class_name"] in LABELS.values()]
        assert_same_boxes(result["result"], objects, scan["image"])
    assert all(authorization == f"Token {TOKEN}" for _, authorization in host.requests)


def assert_same_boxes(regions: list[dict[str, Any]], objects: list[dict[str, Any]], image: dict[str, int]) -> None:
    """Each scanned object has its region (label, score, box within 1 px) and nothing else is predicted."""
    labels = {cls: label for label, cls in LABELS.items()}
    assert len(regions) == len(objects), (regions, objects)
    width, height = image["width"], image["height"]
    for region, obj in zip(regions, objects, strict=True):
        value, box = region["value"], obj["box"]
        assert region["type"] == "rectanglelabels" and (region["from_name"], region["to_name"]) == ("label", "image")
        assert (region["original_width"], region["original_height"]) == (width, height)
        assert value["rectanglelabels"] == [labels[obj["class_name"]]]
        assert abs(region["score"] - obj["confidence"]) < 1e-3
        assert abs(value["x"] * width / 100 - box["x1"]) <= 1 and abs(value["y"] * height / 100 - box["y1"]) <= 1
        assert abs(value["width"] * width / 100 - (box["x2"] - box["x1"])) <= 1
        assert abs(value["height"] * height / 100 - (box["y2"] - box["y1"])) <= 1
        assert ("meta" in region) is obj["is_hazard"]


def test_label_studio_task_images_come_from_its_host_alone(server, hosts, photos):
    host, other = hosts
    connect(server, hosts)
    good = f"/data/upload/1/{photos[0].name}"
    tasks = [task(1, good), task(2, "/data/upload/1/moved.jpg"), task(3, "/data/upload/1/huge.png"),
             task(4, "/data/upload/1/huge-undeclared.png"), task(5, f"{other.url}/data/upload/1/{photos[0].name}"),
             task(6, "s3://bucket/photo.jpg"), {"id": 7, "data": {"text": "no image"}},
             task(8, "/data/upload/1/renamed.jpg"), task(9, f"{host.url}{good}"),
             task(10, f"/data/upload/1/{UNICODE_NAME}")]
    results = predict(server, tasks)["results"]
    errors = [r.get("error") for r in results]
    assert errors[0] is None and errors[7] is None and errors[8] is None and errors[9] is None  # its own files
    assert "redirects to" in errors[1] and "another host" in errors[1]
    assert "limit" in errors[2] and "limit" in errors[3]
    assert "not on Label Studio's host" in errors[4]
    assert "s3" in errors[5]
    assert "data.image" in errors[6]
    assert all(r["result"] == [] for r, e in zip(results, errors, strict=True) if e)
    assert other.requests == []  # never fetched, not even by the redirect


def test_label_studio_wrong_token_fails_its_tasks_with_the_reason(server, hosts, photos):
    with backend(server) as client:
        assert client.post("/setup", json={"project": "8.1", "schema": CONFIG, "hostname": hosts[0].url,
                                           "access_token": "wrong"}).status_code == 200
    results = predict(server, [task(1, f"/data/upload/1/{photos[0].name}")], project="8.1")["results"]
    assert "HTTP 401" in results[0]["error"] and "token" in results[0]["error"]


def test_label_studio_project_without_a_host_says_how_to_get_one(server, photos):
    results = predict(server, [task(1, f"/data/upload/1/{photos[0].name}")], project="9.1")["results"]
    assert "label_studio.url" in results[0]["error"]


@pytest.mark.parametrize(("role", "status"), [(Role.ML, 200), (Role.ADMIN, 200), (Role.INSPECTOR, 403),
                                              (Role.PIPELINE, 403), (None, 401)])
def test_label_studio_basic_auth_takes_keys_that_may_preannotate(server, hosts, role, status):
    key = server.keys[role] if role else "hv_not-a-key"
    with backend(server, key) as client:
        response = client.post("/setup", json={"project": PROJECT, "schema": CONFIG, "hostname": hosts[0].url})
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, status, "Forbidden" if status == 403 else "Unauthenticated")


def test_label_studio_without_credentials_is_401_but_health_answers(server):
    with httpx.Client(base_url=f"{server.url}/label-studio", timeout=60) as anonymous:
        assert_error(anonymous.post("/predict", json={"tasks": [task(1, "/x.jpg")], "label_config": CONFIG}), 401)
        assert anonymous.get("/health").json()["status"] == "UP"
        bad = anonymous.get("/health", headers=basic("hv_wrong"))
        assert_error(bad, 401, "Unauthenticated")


@pytest.mark.parametrize(("body", "says"), [
    ({"tasks": [], "label_config": CONFIG}, "no tasks"),
    ({"tasks": [task(1, "/x.jpg")]}, "label_config"),
    ({"tasks": [task(1, "/x.jpg")], "label_config": "<View><Image name=\"image\" value=\"$image\"/></View>"},
     "RectangleLabels"),
    ({"tasks": [task(1, "/x.jpg")], "label_config": "<View><Image"}, "not valid XML"),
    ({"tasks": [task(1, "/x.jpg")], "label_config": "<!DOCTYPE x [<!ENTITY a \"b\">]><View/>"}, "DOCTYPE"),
    ({"tasks": [task(1, "/x.jpg")], "label_config": CONFIG.replace("Helmet", "Ladder2").replace("no-helmet", "x")
      .replace("High-visibility vest worn", "y").replace("No hi-vis", "z")}, "catalogue class"),
    ({"tasks": [task(i, "/x.jpg") for i in range(101)], "label_config": CONFIG}, "at most 100"),
    ({"tasks": "all of them", "label_config": CONFIG}, "tasks"),
], ids=["no-tasks", "no-config", "no-boxes", "broken-xml", "entities", "no-class", "too-many", "not-a-list"])
def test_label_studio_bad_request_gets_a_clear_error(server, body, says):
    with backend(server) as client:
        body = assert_error(client.post("/predict", json=body), 422)
    assert says in body["message"]


def test_label_studio_predictions_are_audited_per_project_not_kept_as_scans(server, hosts, photos):
    connect(server, hosts, project="11.1")
    for _ in range(2):  # the second request ends the first one's summary period
        predict(server, [task(1, f"/data/upload/1/{photos[1].name}")], project="11.1")
        time.sleep(0.05)
    records = AuditLog.at(server.home).records()
    summaries = [r for r in records if r.action == "scan.summary" and r.subject == "label-studio project 11"]
    assert summaries and all(r.actor == "test-ml" and r.details["protocol"] == "label-studio" for r in summaries)
    setups = [r for r in records if r.action == "label-studio.setup" and r.subject == "label-studio project 11"]
    assert len(setups) == 1 and setups[0].details["image_host"] == hosts[0].url
    assert setups[0].details["unmapped"] == ["Ladder"] and TOKEN not in str(setups[0].details)
    assert not [r for r in records if r.action == "scan" and r.actor == "test-ml"]


def test_label_studio_setup_is_audited_when_it_changes(server, hosts):
    def setups() -> list[Any]:
        return [r for r in AuditLog.at(server.home).records(action="label-studio")
                if r.subject == "label-studio project 12"]

    connect(server, hosts, project="12.1")
    connect(server, hosts, project="12.1")  # Label Studio repeats its setup: nothing new to record
    assert len(setups()) == 1
    with backend(server) as client:
        assert client.post("/setup", json={"project": "12.1", "schema": CONFIG.replace("Ladder", "Forklift"),
                                           "hostname": hosts[0].url, "access_token": TOKEN}).status_code == 200
    assert len(setups()) == 2 and setups()[-1].details["labels"]["Forklift"] == "forklift"


def test_label_studio_url_in_settings_pins_the_host_and_token(tmp_path, hosts, photos, datasets):
    host, other = hosts
    alias = "http://label-studio.internal:8080"  # Label Studio's own HOSTNAME, which this service cannot reach
    with live_server(tmp_path, label_studio={"url": host.url, "access_token": TOKEN}) as pinned:
        good = f"/data/upload/1/{photos[0].name}"
        before = predict(pinned, [task(1, good)], project="3.1")["results"]  # no setup needed
        with backend(pinned) as client:
            setup = client.post("/setup", json={"project": "3.1", "schema": CONFIG, "hostname": alias,
                                                "access_token": "ignored"}).json()
        assert setup["image_host"] == host.url
        after = predict(pinned, [task(1, f"{alias}{good}"), task(2, f"{other.url}{good}")], project="3.1")["results"]
    assert before[0].get("error") is None and after[0].get("error") is None  # the alias is read as the pinned host
    assert [r["value"] for r in after[0]["result"]] == [r["value"] for r in before[0]["result"]]
    assert "not on Label Studio's host" in after[1]["error"] and other.requests == []
    assert host.requests[-1][1] == f"Token {TOKEN}"


def test_label_studio_label_mapped_to_a_class_the_catalogue_lacks_stops_the_start(tmp_path):
    with pytest.raises(ClassMappingError, match="hard_hat"):
        create_app(Settings(home=tmp_path, label_studio={"labels": {"Hard hat": "hard_hat"}}))


# Label Studio's own export of a project: its converter, downloading the images from the file host as
# "YOLO with Images" and "COCO with Images" do.
EXPORT = """
import json, sys
from label_studio_sdk.converter import Converter
args = json.load(sys.stdin)
converter = Converter(config=args["config"], project_dir=None, download_resources=True, hostname=args["hostname"],
                      access_token=args["token"])
converter.convert_to_yolo(args["tasks"], args["yolo"], is_dir=False)
converter.convert_to_coco(args["tasks"], args["coco"], is_dir=False)
print(json.dumps({"done": True}))
"""


@pytest.mark.parametrize("export_format", ["yolo", "coco"])
def test_label_studio_export_of_accepted_predictions_imports_into_the_bank(server, hosts, photos, label_studio_sdk,
                                                                          tmp_path, export_format):
    """The way back: the pre-annotations, accepted as they are, exported by Label Studio's converter and zipped under
    Label Studio's export name, import with their project, export time and classes."""
    connect(server, hosts)
    tasks = [task(i, f"/data/upload/1/{p.name}") for i, p in enumerate(photos)]
    predicted = predict(server, tasks)["results"]
    exported = [{**t, "annotations": [{"id": t["id"], "result": p["result"], "completed_by": 1, "was_cancelled": False,
                                       "created_at": "2026-11-30T14:00:00Z"}]} for t, p in zip(tasks, predicted,
                                                                                               strict=True)]
    (tmp_path / "tasks.json").write_text(json.dumps(exported))
    run_client(label_studio_sdk, EXPORT, {"config": CONFIG, "hostname": hosts[0].url, "token": TOKEN,
                                          "tasks": str(tmp_path / "tasks.json"), "yolo": str(tmp_path / "yolo"),
                                          "coco": str(tmp_path / "coco")})
    folder = tmp_path / export_format
    archive = tmp_path / f"project-7-at-2026-11-30-14-05-{export_format}00000.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(folder.rglob("*")):
            out.write(file, file.relative_to(folder).as_posix())
    bank = SampleBank(tmp_path / "bank")
    report = import_export(bank, archive, load_catalogue(), mapping={"No hi-vis": "no_vest"}, drop=["Ladder"])
    assert (report.imported, report.failed) == (len(photos), 0), report
    source = next(s for s in bank.stats().sources if s.name == report.source)
    assert (source.kind, source.origin) == ("label-studio", "Label Studio project 7, exported 2026-11-30T14:05")
    imported = sorted((a.class_name, round(a.box[0])) for case in bank.cases(source=report.source, limit=100)
                      for a in case.annotations)
    boxes = sorted((LABELS[r["value"]["rectanglelabels"][0]], round(r["value"]["x"] * r["original_width"] / 100))
                   for p in predicted for r in p["result"])
    assert imported and len(imported) == len(boxes)
    assert all(a[0] == b[0] and abs(a[1] - b[1]) <= 1 for a, b in zip(imported, boxes, strict=True))
