"""Model integrity through a real server: a pack whose model file was damaged does not take the others down, the
readiness route names it, a good version of it can be activated, and the gate refuses swapped files and zeroed
weights (audited, refusals too)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hazardvision.access import Role
from hazardvision.data.audit import AuditLog
from hazardvision.packs.card import EvaluatedSet, ModelCard
from hazardvision.packs.promotion import split_id
from tests.packs.test_integrity import SET, copy_version, site_source, synthetic_set, zeroed_model
from tests.service.conftest import assert_error, eventually, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Packs: extra 1.0.0 (site's model, loads); site 0.4.0 active with a damaged model.onnx, 0.4.1 good, 0.4.2
    zeroed weights (its card claims the real figures), 0.4.3 the zeroed file under 0.4.0's hashes (a swap). Their
    cards record forklift-person at mAP50 0.5 on the synthetic stand-in the service's datasets root holds."""
    datasets = synthetic_set(tmp_path_factory.mktemp("datasets"))
    root = tmp_path_factory.mktemp("models")
    card = ModelCard.read(site_source() / "card.json")
    assert card.metrics is not None
    recorded = card.metrics.datasets[SET].model_copy(update={"map50": 0.5})
    changes: dict[str, object] = {
        "evaluation_sets": (EvaluatedSet(dataset=SET, split_id=split_id(datasets / SET / "data.yaml", "test")),),
        "metrics": card.metrics.model_copy(update={"datasets": {SET: recorded}})}
    damaged = copy_version(root, "0.4.0", card_changes=changes) / "model.onnx"
    damaged.unlink()
    damaged.write_bytes(b"\x08\x07 not a model any more" * 64)
    copy_version(root, "0.4.1", card_changes=changes)
    zeroed = zeroed_model(tmp_path_factory.mktemp("zeroed") / "model.onnx")
    copy_version(root, "0.4.2", model=zeroed, card_changes=changes)
    copy_version(root, "0.4.3", model=zeroed, card_changes=changes, rehash=False)
    (root / "site" / "ACTIVE").write_text("0.4.0\n")
    copy_version(root, "1.0.0", pack="extra")
    with live_server(tmp_path_factory.mktemp("integrity-home"), models=root, datasets=datasets) as running:
        yield running


def photo() -> bytes:
    image = (np.random.default_rng(1).random((320, 320, 3)) * 255).astype(np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def test_a_pack_that_fails_to_load_leaves_the_others_serving_and_readiness_names_it(server):
    with server.client(Role.INSPECTOR) as inspector:
        ready = inspector.get("/readyz")
        assert ready.status_code == 200 and ready.json()["models"] == {"extra": "1.0.0"}
        assert "model.onnx of site 0.4.0 does not match its card's sha256" in ready.json()["down"]["site"]
        assert "site" in ready.json()["message"]
        assert "site" in inspector.get("/healthz").json()["down"]
        scan = inspector.post("/v1/scans", files={"image": ("p.png", photo())})
        assert scan.status_code == 200, scan.text
        assert [m["pack"] for m in scan.json()["models"]] == ["extra"]
        site = next(p for p in inspector.get("/v1/models").json()["packs"] if p["pack"] == "site")
        assert site["serving_version"] is None and "does not match" in site["down"]


def test_activation_refuses_a_swapped_model_file_even_forced(server):
    with server.client(Role.ADMIN) as admin:
        body = assert_error(admin.post("/v1/models/site/activate", json={"version": "0.4.3", "force": True}), 422,
                            "ModelIntegrityError")
    assert body["message"].startswith("model.onnx of site 0.4.3 does not match its card's sha256: the file was "
                                      "changed or damaged")


def test_activation_brings_a_good_version_of_the_broken_pack_back(server):
    with server.client(Role.ML) as ml:
        response = ml.post("/v1/models/site/activate", json={"version": "0.4.1"})
        assert response.status_code == 200, response.text
        [row] = response.json()["comparisons"]
        assert (row["dataset"], row["source"], row["active"]) == (SET, "card", 0.5) and row["candidate"] > 0.9
        ready = ml.get("/readyz").json()
    assert ready["models"] == {"extra": "1.0.0", "site": "0.4.1"} and ready["down"] == {}


def test_activation_refuses_zeroed_weights_and_a_tolerance_above_the_limit(server):
    with server.client(Role.ML) as ml:
        body = assert_error(ml.post("/v1/models/site/activate", json={"version": "0.4.2"}), 409, "PromotionRefused")
        assert f"worse than the active 0.4.1 beyond the tolerance of 0.01: {SET}: mAP50 0.000" in body["message"]
        assert_error(ml.post("/v1/models/site/activate", json={"version": "0.4.2", "tolerance": 1}), 422)
        assert ml.get("/readyz").json()["models"]["site"] == "0.4.1"


def test_activations_are_audited_refusals_too(server):
    log = AuditLog.at(server.home)
    assert log.verify() == []
    refused = log.records(action="model.activate_refused")
    assert [(r.subject, r.details["error"]) for r in refused] == [
        ("site 0.4.3", "ModelIntegrityError"), ("site 0.4.2", "PromotionRefused")]
    [activated] = log.records(action="model.activate")
    assert activated.actor == "test-ml" and activated.details["comparisons"][0]["source"] == "card"
    assert activated.model_versions == {"extra": "1.0.0", "site": "0.4.1"}


def test_with_every_pack_down_readiness_says_why_and_activation_still_works(tmp_path):
    root = tmp_path / "models"
    damaged = copy_version(root, "0.4.0") / "model.onnx"
    damaged.unlink()
    damaged.write_bytes(b"damaged")
    copy_version(root, "0.4.1")
    (root / "site" / "ACTIVE").write_text("0.4.0\n")
    with live_server(tmp_path / "home", models=root, datasets=tmp_path / "none", wait_ready=False) as running, \
            running.client(Role.ADMIN) as admin:
        ready = eventually(lambda: (r := admin.get("/readyz")).json()["message"] != "loading the models" and r, 60)
        assert ready.status_code == 503 and "does not match its card's sha256" in ready.json()["down"]["site"]
        scan = assert_error(admin.post("/v1/scans", files={"image": ("p.png", photo())}), 503, "ModelsLoading")
        assert "no model pack could be loaded: site" in scan["message"]
        refused = assert_error(admin.post("/v1/models/site/activate", json={"version": "0.4.1"}), 409)
        assert "cannot be scored" in refused["message"]  # nothing to score on: force it, as an admin may
        assert admin.post("/v1/models/site/activate", json={"version": "0.4.1", "force": True}).status_code == 200
        assert admin.get("/readyz").json()["models"] == {"site": "0.4.1"}
        assert admin.post("/v1/scans", files={"image": ("p.png", photo())}).status_code == 200
