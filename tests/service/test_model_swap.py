"""Activating model versions through a real server while clients scan: the gate, the swap, no failed request."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from hazardvision.access import Role
from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import load_catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.packs.model_pack import load_pack
from hazardvision.packs.registry import PackRegistry
from hazardvision.service import serving
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.maintenance import sync_indexes
from tests.conftest import bundled_registry
from tests.service.conftest import assert_error, labelled_bank, live_server

CLIENTS = 4
SWAPS = 12


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return ppe_versions(tmp_path_factory.mktemp("models"))


def ppe_versions(root: Path) -> Path:
    """The bundled ppe 0.2.1 as 0.1.0, and ppe 0.2.0 (0.022 mAP50 worse on ppe-vest, scored afresh by the gate,
    which refuses it) as 0.1.1."""
    for version, released in (("0.1.0", "0.2.1"), ("0.1.1", "0.2.0")):
        source = bundled_registry().version("ppe", released).folder
        folder = root / "ppe" / version
        folder.mkdir(parents=True)
        card = json.loads((source / "card.json").read_text())
        card["version"] = version
        (folder / "card.json").write_text(json.dumps(card))
        for name in (card["model_file"], card["model_file_int8"]):
            (folder / name).symlink_to(source / name)
    (root / "ppe" / "ACTIVE").write_text("0.1.0\n")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, models_dir, datasets):
    with live_server(tmp_path_factory.mktemp("swap-home"), models=models_dir) as running:
        yield running


def test_models_lists_versions_with_metrics(server):
    with server.client(Role.INSPECTOR) as inspector:
        packs = inspector.get("/v1/models").json()["packs"]
    assert [p["pack"] for p in packs] == ["ppe"]
    ppe = packs[0]
    assert (ppe["active_version"], ppe["serving_version"]) == ("0.1.0", "0.1.0")
    assert [v["version"] for v in ppe["versions"]] == ["0.1.0", "0.1.1"]
    assert ppe["versions"][0]["metrics"]["datasets"]["ppe-vest"]["map50"] > 0.5
    assert ppe["versions"][0]["serving"] and not ppe["versions"][1]["serving"]


def test_models_activation_goes_through_the_gate(server, models_dir):
    with server.client(Role.ML) as ml:
        refused = assert_error(ml.post("/v1/models/ppe/activate", json={"version": "0.1.1"}), 409, "PromotionRefused")
        assert "worse" in refused["message"]
        assert_error(ml.post("/v1/models/ppe/activate", json={"version": "0.1.1", "force": True}), 403, "Forbidden")
        assert_error(ml.post("/v1/models/ppe/activate", json={"version": "9.9.9"}), 404, "UnknownModel")
        assert_error(ml.post("/v1/models/nopack/activate", json={"version": "0.1.0"}), 404, "UnknownModel")
        assert ml.post("/v1/models/ppe/activate", json={"version": "0.1.0"}).status_code == 200
    with server.client(Role.INSPECTOR) as inspector:
        assert_error(inspector.post("/v1/models/ppe/activate", json={"version": "0.1.0"}), 403, "Forbidden")
    assert (models_dir / "ppe" / "ACTIVE").read_text().strip() == "0.1.0"


def test_models_swap_under_load_fails_no_request(server, models_dir, ppe_photos):
    photos = [p.read_bytes() for p in ppe_photos[:4]]
    seen: set[str] = set()
    failures: list[str] = []
    stop = threading.Event()

    def scan_continuously(index: int) -> None:
        with server.client(Role.INSPECTOR) as client:
            while not stop.is_set():
                response = client.post("/v1/scans", files={"image": ("p.jpg", photos[index % len(photos)])})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    continue
                seen.update(m["version"] for m in response.json()["models"])

    threads = [threading.Thread(target=scan_continuously, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        with server.client(Role.ADMIN) as admin:
            for swap in range(SWAPS):
                version = "0.1.1" if swap % 2 == 0 else "0.1.0"
                response = admin.post("/v1/models/ppe/activate", json={"version": version, "force": version == "0.1.1"})
                assert response.status_code == 200, response.text
                assert response.json()["serving"] == {"ppe": version}
                time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert seen == {"0.1.0", "0.1.1"}
    assert (models_dir / "ppe" / "ACTIVE").read_text().strip() == "0.1.0"  # never written: activations go to the home
    assert (server.home / "models" / "ppe" / "ACTIVE").read_text().strip() == "0.1.0"


def test_models_every_activation_is_audited(server):
    log = AuditLog.at(server.home)
    assert log.verify() == []
    records = log.records(action="model.activate")
    assert len(records) == SWAPS + 1
    assert [r.model_versions for r in records[-2:]] == [{"ppe": "0.1.1"}, {"ppe": "0.1.0"}]
    assert records[-2].actor == "test-admin" and records[-2].details["forced"] is True


def test_models_activation_builds_the_new_versions_index_before_serving_it(server, models_dir, ppe_photos,
                                                                          tmp_path):
    bank = SampleBank(server.home)
    labelled_bank_photos = ppe_photos[6:10]  # photos with confident findings
    labelled_bank(bank, tmp_path, labelled_bank_photos)
    sync_indexes(bank, [load_pack(models_dir / "ppe" / "0.1.0")])
    new_version = load_pack(models_dir / "ppe" / "0.1.1")
    assert not CaseIndex(server.home, new_version).exists
    with server.client(Role.ADMIN) as admin:
        response = admin.post("/v1/models/ppe/activate", json={"version": "0.1.1", "force": True})
        assert response.status_code == 200, response.text
        assert CaseIndex(server.home, new_version).verify(bank) == []
        assert admin.get("/readyz").json()["similar_cases"] is True
        scans = [admin.post("/v1/scans", files={"image": ("p.jpg", photo.read_bytes())}).json()
                 for photo in labelled_bank_photos]
    cases = [case for scan in scans for finding in scan["findings"] for case in finding["similar_cases"]]
    assert cases and all(case["source"] == "ppe-sample" for case in cases)
    bank.engine.dispose()


def test_models_activation_scoring_holds_up_no_swap_of_the_index_or_the_models(tmp_path, monkeypatch):
    """While the gate scores a candidate (here held until released), the host still follows the other processes'
    model changes and updates its similar-case search: only the swap itself takes the host's lock."""
    registry = PackRegistry(ppe_versions(tmp_path / "bundled"), tmp_path / "home" / "models")
    host = serving.ModelHost(registry, load_catalogue(), SampleBank(tmp_path / "home"), precision=None, query=None)
    host.load()
    scoring, release = threading.Event(), threading.Event()
    real_promote = serving.promote

    def slow_promote(*args, **kwargs):
        scoring.set()
        assert release.wait(60)
        return real_promote(*args, **kwargs)

    monkeypatch.setattr(serving, "promote", slow_promote)
    done: list[object] = []
    activation = threading.Thread(target=lambda: done.append(host.activate("ppe", "0.1.1", force=True)))
    activation.start()
    try:
        assert scoring.wait(60)
        followed = threading.Thread(target=lambda: (host.follow_models(), host.refresh_search()))
        followed.start()
        followed.join(5)
        assert not followed.is_alive(), "following and the index update waited for the gate"
    finally:
        release.set()
        activation.join(60)
    assert done and host.versions == {"ppe": "0.1.1"}
