"""Two `hazardvision serve` processes on one PostgreSQL database and one home folder: what one changes, the
other serves within seconds, without a restart, and the audit chain holds the records of both."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.similar.maintenance import sync_indexes
from tests.conftest import REPO, bundled_packs, test_photos
from tests.databases import PostgresServer
from tests.service.conftest import STARTUP_SECONDS, eventually, jpeg_bytes, labelled_bank, live_server
from tests.service.test_serve_command import free_port

pytestmark = pytest.mark.database("postgresql")



@contextmanager
def serve(home: Path, url: str) -> Iterator[str]:
    """`hazardvision serve` on `home` and the database at `url`, polling for changes every second."""
    port = free_port()
    env = {**os.environ, "HAZARDVISION_DATABASE_URL": url, "HAZARDVISION_SYNC_SECONDS": "1",
           "HAZARDVISION_INFERENCE_WORKERS": "1", "HAZARDVISION_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "hazardvision", "serve", "--home", str(home), "--port",
                                str(port)], cwd=REPO, env=env, text=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=60)


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not become ready"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, postgres_server: PostgresServer, datasets) -> Iterator[dict[str, Any]]:
    """Servers `a` and `b` on one home (six labelled photos, indexed) and one PostgreSQL database; a key per role."""
    with postgres_server.database() as url:
        home = tmp_path_factory.mktemp("two-processes")
        bank = SampleBank(home, url=url)
        labelled_bank(bank, tmp_path_factory.mktemp("labelled"), test_photos("ppe-vest")[20:26])
        sync_indexes(bank, bundled_packs())
        keys = {role: ApiKeys(bank).create(f"test-{role.value}", role)[1] for role in (Role.INSPECTOR, Role.ADMIN)}
        bank.close()
        with serve(home, url) as a, serve(home, url) as b:
            wait_ready(a)
            wait_ready(b)
            yield {"home": home, "url": url, "a": a, "b": b, "keys": keys}


def client(pair: dict[str, Any], server: str, role: Role = Role.INSPECTOR) -> httpx.Client:
    return httpx.Client(base_url=pair[server], headers={"Authorization": f"Bearer {pair['keys'][role]}"}, timeout=120)


def test_processes_a_review_through_one_is_a_similar_case_in_the_other(pair, ppe_photos):
    with client(pair, "a") as a, client(pair, "b") as b:
        for photo in ppe_photos[:10]:
            scan = a.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()
            if scan["findings"]:
                break
        else:
            pytest.skip("no photo among the first ten of ppe-vest's test split gives a finding")
        review = a.post(f"/v1/findings/{scan['findings'][0]['id']}/review",
                        json={"decision": "confirm", "reviewer": "li.wei"}).json()
        again = jpeg_bytes(photo, quality=75)

        def in_b() -> bool:
            found = b.post("/v1/scans", files={"image": ("again.jpg", again)}).json()["findings"]
            return any(case["annotation_id"] == review["annotation_id"] for f in found for case in f["similar_cases"])

        eventually(in_b)


def test_processes_an_activation_through_one_is_served_by_the_other(pair, ppe_photos):
    with client(pair, "a", Role.ADMIN) as a, client(pair, "b", Role.ADMIN) as b:
        versions = {p["pack"]: p for p in b.get("/v1/models").json()["packs"]}["ppe"]
        other = next(v["version"] for v in versions["versions"] if v["version"] != versions["serving_version"])
        response = a.post("/v1/models/ppe/activate", json={"version": other, "force": True})
        assert response.status_code == 200, response.text

        def b_serves() -> bool:
            packs = {p["pack"]: p for p in b.get("/v1/models").json()["packs"]}
            return packs["ppe"]["serving_version"] == other

        eventually(b_serves)
        scan = b.post("/v1/scans", files={"image": ("x.jpg", ppe_photos[0].read_bytes())}).json()
        assert {m["pack"]: m["version"] for m in scan["models"]}["ppe"] == other


def test_processes_append_to_one_audit_chain(pair, ppe_photos):
    scans = []
    for server in ("a", "b", "a", "b"):
        with client(pair, server) as c:
            scans.append(c.post("/v1/scans", files={"image": ("p.jpg", ppe_photos[1].read_bytes())}).json()["scan_id"])
    log = AuditLog.at(pair["home"], url=pair["url"])
    assert log.verify() == []
    recorded = {r.subject for r in log.records(action="scan")}
    assert set(scans) <= recorded
    log.database.dispose()


def _delete_and_configure_again(server: httpx.Client, camera_id: str) -> None:
    assert server.delete(f"/v1/cameras/{camera_id}").status_code == 200
    assert server.put(f"/v1/cameras/{camera_id}", json={"rule": {"min_frames": 3}}).status_code == 200


def _reset(server: httpx.Client, camera_id: str) -> None:
    assert server.post(f"/v1/cameras/{camera_id}/reset").status_code == 200


@pytest.mark.parametrize("start_over", [_delete_and_configure_again, _reset], ids=["deleted-and-re-created", "reset"])
def test_processes_a_camera_started_over_through_one_starts_over_in_the_other(pair, ppe_photos, start_over):
    camera_id = f"shared-{start_over.__name__.strip('_').replace('_', '-')}"
    frame = ppe_photos[0].read_bytes()
    with client(pair, "a", Role.ADMIN) as a, client(pair, "b", Role.ADMIN) as b:
        def send(timestamp: float) -> httpx.Response:
            return b.post(f"/v1/cameras/{camera_id}/frames", files={"image": ("frame.jpg", frame)},
                          data={"timestamp": str(timestamp)})

        def seen_by_b() -> dict[str, Any]:
            return {c["camera_id"]: c for c in b.get("/v1/cameras").json()["cameras"]}[camera_id]

        assert a.put(f"/v1/cameras/{camera_id}", json={"rule": {"min_frames": 3}}).status_code == 200
        for timestamp in (100.0, 101.0):
            assert send(timestamp).status_code == 200
        refused = send(1.0)  # b's tracker of the camera holds its timeline
        assert refused.status_code == 409 and "older than its previous frame" in refused.json()["message"]

        start_over(a, camera_id)  # through a: b holds the tracker, and learns of it from the database alone
        eventually(lambda: send(1.0).status_code == 200)
        status = seen_by_b()
        assert (status["frames_analysed"], status["last_timestamp"]) == (1, 1.0)
        assert send(2.0).status_code == 200 and seen_by_b()["frames_analysed"] == 2  # the fresh timeline goes on


@pytest.mark.database("sqlite")
def test_processes_a_reindex_made_after_the_service_started_is_searched(tmp_path, ppe_photos, monkeypatch):
    monkeypatch.delenv("HAZARDVISION_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    bank = SampleBank(home)
    labelled_bank(bank, tmp_path / "labelled", test_photos("ppe-vest")[20:26])  # in the bank, not indexed yet
    with live_server(home, sync_seconds=1) as server, server.client(Role.INSPECTOR) as inspector:
        photo = jpeg_bytes(test_photos("ppe-vest")[20], quality=80)
        before = inspector.post("/v1/scans", files={"image": ("p.jpg", photo)}).json()
        assert before["findings"] and all(not f["similar_cases"] for f in before["findings"])
        sync_indexes(bank, bundled_packs())  # what `hazardvision bank reindex` does, in another process

        def searched() -> bool:
            found = inspector.post("/v1/scans", files={"image": ("p.jpg", photo)}).json()["findings"]
            return any(f["similar_cases"] for f in found)

        eventually(searched)
    bank.close()
