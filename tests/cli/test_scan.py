"""`hazardvision scan`, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hazardvision.images import load_image
from tests.conftest import REPO, test_photos

SCRIPT = Path(sys.executable).with_name("hazardvision")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **env} if env else None)


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


def damaged_copy(pack: str, target: Path, *, hashed: bool) -> None:
    """The active version of a bundled pack with its ONNX file damaged, as the only version of `target/pack`;
    `hashed`: its card keeps the file's sha256 (a hash mismatch), else the card has none (a file that is no model)."""
    bundled = REPO / "models" / pack
    version = (bundled / "ACTIVE").read_text(encoding="utf-8").strip()
    folder = target / pack / version
    folder.mkdir(parents=True)
    card = json.loads((bundled / version / "card.json").read_text(encoding="utf-8"))
    if not hashed:
        card.pop("file_sha256", None)
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    (folder / card["model_file"]).write_bytes((bundled / version / card["model_file"]).read_bytes()[:4096])


@pytest.mark.parametrize("hashed", [True, False], ids=["hash-mismatch", "not-a-model"])
def test_scan_a_damaged_pack_is_named_and_the_others_scan(photos, tmp_path, hashed):
    models = tmp_path / "models"
    models.mkdir()
    (models / "site").symlink_to(REPO / "models" / "site")  # the bundled pack that serves
    damaged_copy("ppe", models, hashed=hashed)
    done = run("scan", str(photos[2]), "--json", "--similar", "0", "--home", str(tmp_path / "home"),
               env={"HAZARDVISION_MODELS": str(models)})
    assert done.returncode == 0, done.stderr
    assert [m["pack"] for m in json.loads(done.stdout)["models"]] == ["site"]
    (warning,) = [line for line in done.stderr.splitlines() if "is left out" in line]
    reason = "does not match its card's sha256" if hashed else "is not a loadable ONNX model"
    assert warning.startswith("warning: pack ppe is left out of this scan: ") and reason in warning
    assert "Traceback" not in done.stderr


def test_scan_exits_2_when_no_pack_loads(photos, tmp_path):
    models = tmp_path / "models"
    for pack in ("ppe", "site"):
        damaged_copy(pack, models, hashed=True)
    done = run("scan", str(photos[2]), "--json", "--similar", "0", "--home", str(tmp_path / "home"),
               env={"HAZARDVISION_MODELS": str(models)})
    assert done.returncode == 2 and done.stdout == ""
    assert "no model pack could be loaded" in done.stderr and "ppe:" in done.stderr and "site:" in done.stderr
    assert "Traceback" not in done.stderr


def test_scan_help_names_the_exit_codes():
    done = run("scan", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # as the terminal's width wrapped it
    assert "Exit codes: 0 every photo scanned; 1 some photo could not be scanned; 2 nothing was scanned: no model " \
           "pack loads" in text
