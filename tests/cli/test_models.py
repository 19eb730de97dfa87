"""`hazardvision models`: listing both layers, promotion into the home, bundling a home version for a release."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hazardvision.data.audit import AuditLog
from hazardvision.packs.card import CARD_FILE, ModelCard
from hazardvision.packs.registry import ACTIVE_FILE
from tests.conftest import bundled_registry
from tests.packs.test_promotion import scored
from tests.packs.test_registry import add_version, fingerprint

SCRIPT = Path(sys.executable).with_name("hazardvision")


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "models", *args], capture_output=True, text=True, timeout=120, check=False)


def test_models_list_json_shows_bundled_and_home_packs_with_metrics_and_credits(tmp_path):
    add_version(tmp_path / "models", "ladders", "1.0")
    done = models("list", "--json", "--home", str(tmp_path))
    assert done.returncode == 0, done.stderr
    cards = json.loads(done.stdout)
    active = {c["pack"] for c in cards if c["active"]}
    assert active == {v.pack for v in bundled_registry().serving()} | {"ladders"}
    assert [c["bundled"] for c in cards if c["pack"] == "ladders"] == [False]
    for card in cards:
        assert card["data_sources"] and all("CC BY 4.0" in s["licence"] for s in card["data_sources"])
        assert card["metrics"]["datasets"]


def test_models_show_prints_the_card_and_rejects_unknown_packs(tmp_path):
    shown = models("show", "fire-smoke", "--home", str(tmp_path))
    assert shown.returncode == 0 and "Training data and credits" in shown.stdout
    unknown = models("show", "ladders", "--home", str(tmp_path))
    assert unknown.returncode == 2 and "no pack 'ladders'" in unknown.stderr


def test_models_promote_goes_through_the_gate_and_writes_only_the_home(tmp_path):
    bundled, home = tmp_path / "bundled", tmp_path / "home"
    add_version(bundled, "fire-smoke", "v1", **scored(0.50))
    (bundled / "fire-smoke" / ACTIVE_FILE).write_text("v1\n")
    add_version(home / "models", "fire-smoke", "v2", **scored(0.45))
    before = fingerprint(bundled)
    layers = ("--models", str(bundled), "--home", str(home))

    refused = models("promote", "fire-smoke", "v2", *layers, "--datasets", str(tmp_path / "none"))
    assert refused.returncode == 2 and "cannot be scored against the active v1" in refused.stderr
    forced = models("promote", "fire-smoke", "v2", "--force", *layers)
    assert forced.returncode == 0 and "fire-smoke v2 is active" in forced.stdout
    assert (home / "models" / "fire-smoke" / ACTIVE_FILE).read_text().strip() == "v2"
    assert fingerprint(bundled) == before
    back = models("promote", "fire-smoke", "v1", "--force", *layers)  # a bundled version, activated in the home
    assert back.returncode == 0 and (home / "models" / "fire-smoke" / ACTIVE_FILE).read_text().strip() == "v1"
    assert fingerprint(bundled) == before
    records = AuditLog.at(home).records()  # every promotion is audited, refusals too
    assert [(r.action, r.subject, r.details["forced"]) for r in records] == [
        ("model.activate_refused", "fire-smoke v2", False), ("model.activate", "fire-smoke v2", True),
        ("model.activate", "fire-smoke v1", True)]
    assert records[0].actor.startswith("cli:") and "cannot be scored" in records[0].details["reason"]
    assert records[1].details["previous"] == "v1" and records[1].model_versions == {"fire-smoke": "v2"}


def test_models_promote_refuses_a_tolerance_above_the_limit(tmp_path):
    add_version(tmp_path / "bundled", "fire-smoke", "v1")
    (tmp_path / "bundled" / "fire-smoke" / ACTIVE_FILE).write_text("v1\n")
    add_version(tmp_path / "home" / "models", "fire-smoke", "v2")
    refused = models("promote", "fire-smoke", "v2", "--tolerance", "1", "--models", str(tmp_path / "bundled"),
                     "--home", str(tmp_path / "home"))
    assert refused.returncode == 2 and "a tolerance of 1.0 is outside 0 to 0.02" in refused.stderr


def test_models_bundle_copies_a_home_version_and_refuses_to_overwrite(tmp_path):
    bundled, home = tmp_path / "bundled", tmp_path / "home"
    add_version(bundled, "ladders", "1.0")
    add_version(home / "models", "ladders", "1.1", status="trained at home")
    layers = ("--models", str(bundled), "--home", str(home))

    done = models("bundle", "ladders", "1.1", *layers)
    assert done.returncode == 0, done.stderr
    assert ModelCard.read(bundled / "ladders" / "1.1" / CARD_FILE).status == "trained at home"
    assert (bundled / "ladders" / "1.1" / "model.onnx").is_file()
    assert (bundled / "ladders" / ACTIVE_FILE).read_text() == "1.0\n"  # the release still serves what it served
    before = fingerprint(bundled)
    again = models("bundle", "ladders", "1.1", *layers)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    bundled_one = models("bundle", "ladders", "1.0", *layers)
    assert bundled_one.returncode == 2 and "never overwritten" in bundled_one.stderr
    unknown = models("bundle", "ladders", "2.0", *layers)
    assert unknown.returncode == 2 and "no version '2.0'" in unknown.stderr
    assert fingerprint(bundled) == before
