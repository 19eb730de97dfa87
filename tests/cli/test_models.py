from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hazardvision.packs.model_pack import active_packs

SCRIPT = Path(sys.executable).with_name("hazardvision")


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "models", *args], capture_output=True, text=True, timeout=120, check=False)


def test_models_list_json_shows_active_packs_with_metrics_and_credits():
    done = models("list", "--json")
    assert done.returncode == 0, done.stderr
    cards = json.loads(done.stdout)
    active = {c["pack"] for c in cards if c["active"]}
    assert active == {p.name for p in active_packs()} and active
    for card in cards:
        assert card["data_sources"] and all("CC BY 4.0" in s["licence"] for s in card["data_sources"])
        assert card["metrics"]["datasets"]


def test_models_show_prints_the_card_and_rejects_unknown_packs():
    shown = models("show", "fire-smoke")
    assert shown.returncode == 0 and "Training data and credits" in shown.stdout
    unknown = models("show", "ladders")
    assert unknown.returncode == 2 and "no pack 'ladders'" in unknown.stderr


def test_models_promote_through_the_gate(tmp_path):
    import shutil



    source = next(p for p in active_packs() if "fire" in p.card.classes).folder
    for version in ("v1", "v2"):
        shutil.copytree(source, tmp_path / "fire-smoke" / version, ignore=shutil.ignore_patterns("*.pt"))
    (tmp_path / "fire-smoke" / "ACTIVE").write_text("v1\n")
    card_path = tmp_path / "fire-smoke" / "v2" / "card.json"
    card = json.loads(card_path.read_text())
    card["metrics"]["datasets"]["fire-smoke"]["map50"] -= 0.05
    card_path.write_text(json.dumps(card))

    refused = models("promote", "fire-smoke", "v2", "--models", str(tmp_path))
    assert refused.returncode == 2 and "worse than the active v1" in refused.stderr
    forced = models("promote", "fire-smoke", "v2", "--force", "--models", str(tmp_path))
    assert forced.returncode == 0 and "fire-smoke v2 is active" in forced.stdout
    assert (tmp_path / "fire-smoke" / "ACTIVE").read_text().strip() == "v2"
