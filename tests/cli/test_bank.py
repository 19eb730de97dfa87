"""`hazardvision bank ...` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bank.conftest import make_yolo

SCRIPT = Path(sys.executable).with_name("hazardvision")


def bank(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "bank", *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def dataset(sample_photos, tmp_path) -> Path:
    labels = ["0 0.5 0.5 0.2 0.2\n", "1 0.4 0.4 0.2 0.2\nbroken line\n", "2 0.3 0.3 0.2 0.2\n"]
    return make_yolo(tmp_path / "site-photos", sample_photos[:3], labels, ["hard_hat", "no_head_wear", "default"])


def test_bank_import_show_stats_and_snapshot(dataset, tmp_path):
    home = str(tmp_path / "home")
    done = bank("import", str(dataset), "--home", home, "--map", "hard_hat=helmet", "--map", "no_head_wear=no_helmet",
                "--drop", "default", "--site", "Dock 3", "--enterprise", "Acme Steel", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["imported"], report["failed"], report["backgrounds"]) == (2, 1, 1)
    assert "not numbers" in report["problems"][0]["errors"][0]

    listed = json.loads(bank("list", "--home", home, "--json").stdout)
    shown = json.loads(bank("show", str(listed[0]["id"]), "--home", home, "--json").stdout)
    assert shown["source"] == "site-photos" and shown["source_file"] == "images/train/photo000.jpg"
    assert shown["annotations"][0]["class_name"] == "helmet"
    assert shown["annotations"][0]["source_class"] == "hard_hat"
    assert Path(shown["image_path"]).is_file()
    assert (shown["site"], shown["enterprise"]) == ("Dock 3", "Acme Steel")
    by_enterprise = json.loads(bank("list", "--home", home, "--enterprise", "Acme Steel", "--json").stdout)
    assert [c["id"] for c in by_enterprise] == [c["id"] for c in listed]
    assert json.loads(bank("list", "--home", home, "--enterprise", "Other", "--json").stdout) == []

    stats = json.loads(bank("stats", "--home", home, "--json").stdout)
    assert stats["cases"] == 2 and stats["annotations"] == {"helmet": 1}

    made = bank("snapshot", "--home", home, "--classes", "helmet,no_helmet", "--json")
    assert made.returncode == 0, made.stderr
    manifest = json.loads(made.stdout)
    assert Path(manifest["path"], "data.yaml").is_file()
    assert bank("snapshot", "--home", home, "--classes", "helmet,no_helmet", "--json").stdout == made.stdout
    assert bank("verify", "--home", home).returncode == 0


def test_bank_import_again_adds_nothing(dataset, tmp_path):
    home = str(tmp_path / "home")
    args = ("import", str(dataset), "--home", home, "--map", "hard_hat=helmet", "--map", "no_head_wear=no_helmet",
            "--drop", "default")
    assert bank(*args).returncode == 0
    again = bank(*args)
    assert "0 imported, 2 already in the bank" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "999"), "no case 999"),
        (("import", "{dataset}"), "are not catalogue classes"),
        (("import", "{dataset}", "--map", "broken"), "SOURCE_CLASS=CATALOGUE_CLASS"),
        (("import", "/nonexistent"), "neither a data.yaml"),
        (("snapshot", "--classes", "helmet"), "no cases match"),
    ],
)
def test_bank_errors_are_one_clear_line(dataset, tmp_path, args, message):
    done = bank(*[a.format(dataset=dataset) for a in args], "--home", str(tmp_path / "home"))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
