"""`hazardvision similar`, `bank reindex` and similar cases in `scan`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.similar.conftest import copy_labelled

SCRIPT = Path(sys.executable).with_name("hazardvision")


def hazardvision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory, datasets) -> Path:
    """A bank of six real ppe-vest photos, indexed by `bank reindex`."""
    home = tmp_path_factory.mktemp("home")
    photos = copy_labelled(tmp_path_factory.mktemp("photos"), "ppe-vest", "train", 6)
    assert hazardvision("bank", "import", str(photos), "--home", str(home), "--site", "Dock 3").returncode == 0
    reindexed = hazardvision("bank", "reindex", "--home", str(home))
    assert reindexed.returncode == 0, reindexed.stderr
    assert "site: added" in reindexed.stdout
    return home


def photo_of(home: Path) -> str:
    return str(next((home / "images").glob("*/*.jpg")))


def test_similar_with_a_box_prints_similar_cases_as_json(home):
    done = hazardvision("similar", photo_of(home), "--box", "10,10,200,200", "-k", "3", "--home", str(home), "--json")
    assert done.returncode == 0, done.stderr
    cases = json.loads(done.stdout)["similar_cases"]
    assert 0 < len(cases) <= 3
    assert {"case_id", "score", "class_name", "hazard_code", "thumbnail", "site"} <= set(cases[0])
    assert Path(cases[0]["thumbnail"]).is_file() and cases[0]["site"] == "Dock 3"


def test_similar_without_a_box_compares_whole_photos(home):
    done = hazardvision("similar", photo_of(home), "--home", str(home), "--json")
    cases = json.loads(done.stdout)["similar_cases"]
    assert cases[0]["score"] == pytest.approx(1, abs=1e-4) and cases[0]["annotation_id"] is None


@pytest.mark.parametrize(("box", "message"), [("1,2,3", "four numbers"), ("50,50,10,10", "is empty")])
def test_similar_refuses_a_malformed_box(home, box, message):
    done = hazardvision("similar", photo_of(home), "--box", box, "--home", str(home))
    assert done.returncode == 2 and message in done.stderr


def test_similar_without_an_index_says_how_to_build_one(tmp_path, real_photo):
    done = hazardvision("similar", str(real_photo), "--home", str(tmp_path))
    assert done.returncode == 2 and "bank reindex" in done.stderr


def test_scan_shows_similar_cases_of_each_finding(home, real_photo):
    done = hazardvision("scan", str(real_photo), "--home", str(home), "--json", "--similar", "2", "--conf", "0.2")
    result = json.loads(done.stdout)
    ppe = [f for f in result["findings"] if f["class_name"] in {"no_helmet", "no_vest"}]
    assert ppe and all(0 < len(f["similar_cases"]) <= 2 for f in ppe)
    assert all(c["class_name"] == f["class_name"] for f in ppe for c in f["similar_cases"])
    table = hazardvision("scan", str(real_photo), "--home", str(home), "--similar", "1", "--conf", "0.2")
    assert "looks like case" in table.stdout
