"""`hazardvision scan`, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hazardvision.images import load_image
from tests.conftest import test_photos

SCRIPT = Path(sys.executable).with_name("hazardvision")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def photos(datasets) -> list[Path]:
    return test_photos("fire-smoke")[:2] + test_photos("ppe-vest")[:1]


def test_scan_json_prints_one_result_per_photo_in_order(photos):
    done = run("scan", *map(str, photos), "--json", "--conf", "0.001")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["source"] for r in results] == [str(p) for p in photos]
    for result in results:
        assert set(result) >= {"source", "image", "models", "findings", "objects", "timings_ms"}
        assert set(result["image"]) == {"width", "height", "sha256"}
        assert len(result["objects"]) > 0
        for finding in result["findings"]:
            assert set(finding["box"]) == {"x1", "y1", "x2", "y2"}
            assert set(finding["hazard"]) >= {"code", "name", "severity", "category", "rules", "advice"}


def test_scan_bad_file_is_reported_and_the_others_still_scanned(photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:500])
    done = run("scan", str(photos[0]), str(broken), str(photos[1]), "--json")
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["source"] for line in lines] == [str(photos[0]), str(broken), str(photos[1])]
    assert lines[1]["error"] == "InvalidImage" and "truncated" in lines[1]["message"]
    assert "findings" in lines[2]
    assert "broken.jpg" in done.stderr and "Traceback" not in done.stderr


def test_scan_table_and_annotated_image(photos, tmp_path):
    out = tmp_path / "annotated.jpg"
    done = run("scan", str(photos[0]), "--conf", "0.05", "--annotate", str(out))
    assert done.returncode == 0, done.stderr
    assert "hazard(s)" in done.stdout
    annotated = load_image(out)
    original = load_image(photos[0])
    assert (annotated.width, annotated.height) == (original.width, original.height)


def test_scan_annotate_folder_for_several_photos(photos, tmp_path):
    done = run("scan", *map(str, photos), "--annotate", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out").glob("*.jpg"))) == len(photos)


def test_scan_unknown_model_is_a_clear_error(photos, tmp_path):
    done = run("scan", str(photos[0]), "--model", str(tmp_path / "nope.onnx"))
    assert done.returncode == 2
    assert "no such ONNX file" in done.stderr and "Traceback" not in done.stderr


def test_scan_with_explicit_onnx_model(photos):
    from tests.conftest import bundled_packs

    pack = next(p for p in bundled_packs() if "fire" in p.card.classes)
    done = run("scan", str(photos[0]), "--model", str(pack.folder / pack.card.model_file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models"] == [{"pack": "model", "version": "file", "precision": "float32"}]


def test_scan_int8_runs_each_packs_quantised_model(photos):
    done = run("scan", str(photos[0]), "--precision", "int8", "--json", "--conf", "0.01")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {m["precision"] for m in result["models"]} == {"int8"}
    assert result["objects"]
