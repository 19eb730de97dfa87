"""Packaging: serving never imports torch, and a wheel carries the catalogue and model packs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_serving_path_does_not_import_torch(real_photo):
    code = (
        "import sys\n"
        "from hazardvision.cli import app\n"
        "from hazardvision.catalogue import load_catalogue\n"
        "from hazardvision.images import load_image\n"
        "from hazardvision.packs.registry import active_packs\n"
        "from hazardvision.scan import Scanner\n"
        f"Scanner(active_packs(), load_catalogue()).scan([load_image({str(real_photo)!r})], ['x'])\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'ultralytics') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list tracked files")
def test_wheel_bundles_catalogue_and_model_packs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0 and "hatchling" in done.stderr:
        pytest.skip("hatchling is not installed in this environment")
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("hazardvision-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hazardvision/_bundled/samples/catalogue.yaml" in names
    assert any(n.startswith("hazardvision/_bundled/models/") and n.endswith("model.onnx") for n in names)
    assert any(n.endswith("card.json") for n in names)
    # the inspection record's fonts, with their licences
    assert {"hazardvision/fonts/DroidSansFallbackFull.ttf", "hazardvision/fonts/DejaVuSans.ttf",
            "hazardvision/fonts/LICENSE-Apache-2.0.txt", "hazardvision/fonts/README.md"} <= set(names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    base = [line for line in requires if "extra ==" not in line]
    assert not any("torch" in line or "ultralytics" in line for line in base), base
    assert "License-Expression: AGPL-3.0-only" in text
