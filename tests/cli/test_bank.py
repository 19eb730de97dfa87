"""`hazardvision bank ...` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hazardvision.bank.bank import SampleBank
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
    assert done.returncode == 1, done.stderr  # one file failed; the others are in
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
    assert bank(*args).returncode == 1  # its broken label file
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


def test_bank_import_with_failed_files_exits_1_saying_how_many(dataset, tmp_path):
    done = bank("import", str(dataset), "--home", str(tmp_path / "home"), "--map", "hard_hat=helmet",
                "--map", "no_head_wear=no_helmet", "--drop", "default")
    assert done.returncode == 1
    assert "3 files, 2 imported, 0 already in the bank, 1 failed" in done.stdout
    assert "1 of 3 files failed" in done.stderr and "Traceback" not in done.stderr


def test_bank_import_without_failures_exits_0(sample_photos, tmp_path):
    labels = ["0 0.5 0.5 0.2 0.2\n", "0 0.4 0.4 0.2 0.2\n"]
    dataset = make_yolo(tmp_path / "clean", sample_photos[:2], labels, ["hard_hat"])
    done = bank("import", str(dataset), "--home", str(tmp_path / "home"), "--map", "hard_hat=helmet")
    assert done.returncode == 0, done.stderr
    assert "2 imported" in done.stdout and "0 failed" in done.stdout


def test_bank_verify_of_a_missing_home_exits_2_and_creates_nothing(tmp_path):
    missing = tmp_path / "TYPO"
    done = bank("verify", "--home", str(missing))
    assert done.returncode == 2
    assert f"no hazardvision home at {missing}: the folder does not exist" in done.stderr
    assert "consistent" not in done.stdout and not missing.exists()
    (tmp_path / "empty").mkdir()
    done = bank("verify", "--home", str(tmp_path / "empty"))
    assert done.returncode == 2 and "holds no bank (bank.sqlite3 is missing)" in done.stderr
    assert list((tmp_path / "empty").iterdir()) == []


def dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def plant_leftovers(home: Path) -> tuple[list[Path], Path]:
    """Temporary files as writers killed mid-write leave them, and one of a writer still at work."""
    gone = dead_pid()
    sha = "ab" * 32
    leftovers = [home / "scans" / ".incoming" / f"{sha}.{gone}", home / "frames" / ".incoming" / f"{sha}.{gone}",
                 home / "thumbnails" / f".17.jpg.{gone}", home / "audit" / f".anchor.key.{gone}.0badc0de",
                 home / "models" / "ppe" / f".ACTIVE.{gone}", home / "snapshots" / f".3f2a9c.{gone}"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.name == "snapshots":
            (path / "images").mkdir(parents=True)
        else:
            path.write_bytes(b"half a file")
    at_work = home / "scans" / ".incoming" / f"{'cd' * 32}.{os.getpid()}"
    at_work.write_bytes(b"being written")
    return leftovers, at_work


def test_bank_verify_reports_leftover_temporary_files_and_clean_removes_them(tmp_path):
    home = tmp_path / "home"
    SampleBank(home).close()
    leftovers, at_work = plant_leftovers(home)

    done = bank("verify", "--home", str(home))
    assert done.returncode == 0, done.stderr
    assert "bank is consistent" in done.stdout
    assert "6 leftover temporary file(s)" in done.stderr and "bank verify --clean" in done.stderr
    assert all(str(path) in done.stderr for path in leftovers)
    assert f"leftover temporary file: {at_work}" not in done.stderr

    cleaned = bank("verify", "--home", str(home), "--clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "removed 6 leftover temporary file(s)" in cleaned.stdout and "leftover" not in cleaned.stderr
    assert not any(path.exists() for path in leftovers) and at_work.exists()


def test_bank_verify_reports_files_others_may_read_and_tighten_makes_them_private(dataset, tmp_path):
    home = tmp_path / "home"
    imported = bank("import", str(dataset), "--home", str(home), "--map", "hard_hat=helmet", "--map",
                    "no_head_wear=no_helmet", "--drop", "default")
    assert imported.returncode == 1, imported.stderr  # one file failed, two are in
    assert "readable by other users" not in bank("verify", "--home", str(home)).stderr  # written private
    photo = next((home / "images").rglob("*.jpg"))
    older = [home, home / "bank.sqlite3", home / "images", photo]  # as a home written before homes were private
    for path in older:
        path.chmod(0o755 if path.is_dir() else 0o644)

    done = bank("verify", "--home", str(home))
    assert done.returncode == 0 and "bank is consistent" in done.stdout, done.stderr
    # SQLite gives the database's write-ahead log and shared memory files (if still there) the database's mode
    assert "private file(s) or folder(s) that group or others may read" in done.stderr
    assert all(f"other users: {path}\n" in done.stderr for path in older) and "bank verify --tighten" in done.stderr

    tightened = bank("verify", "--home", str(home), "--tighten")
    assert tightened.returncode == 0 and "file(s) and folder(s) private (mode 600 and 700)" in tightened.stdout
    assert "readable by other users" not in tightened.stderr
    assert [path.stat().st_mode & 0o777 for path in older] == [0o700, 0o600, 0o700, 0o600]


def test_bank_reimport_reports_different_labels_and_update_labels_applies_them(sample_photos, tmp_path):
    home = str(tmp_path / "home")
    dataset = make_yolo(tmp_path / "site-photos", sample_photos[:2], ["0 0.5 0.5 0.2 0.2\n", "1 0.4 0.4 0.2 0.2\n"],
                        ["helmet", "no_helmet"])
    assert bank("import", str(dataset), "--home", home).returncode == 0
    (dataset.parent / "labels" / "train" / "photo000.txt").write_text("1 0.5 0.5 0.2 0.2\n")

    report_file = tmp_path / "labels.json"
    again = bank("import", str(dataset), "--home", home, "--label-report", str(report_file))
    assert again.returncode == 0, again.stderr
    assert "1 of the photos already in the bank have different labels here (bank left as it was)" in again.stdout
    assert "site-photos/images/train/photo000.jpg" in again.stderr
    assert "1 box class changed (helmet -> no_helmet); the bank keeps version 1" in again.stderr
    assert "--update-labels" in again.stderr
    (written,) = json.loads(report_file.read_text())
    assert written["class_changed"][0]["before"] == "helmet" and written["updated_to"] is None

    updated = bank("import", str(dataset), "--home", home, "--update-labels")
    assert "(1 relabelled)" in updated.stdout and "now label version 2" in updated.stderr
    case_id = str(written["case_id"])
    shown = bank("show", case_id, "--home", home)
    assert "labels: version 2" in shown.stdout and "no_helmet" in shown.stdout
    history = json.loads(bank("history", case_id, "--home", home, "--json").stdout)
    assert [(v["version"], v["author"]) for v in history] == [(1, "dataset site-photos"), (2, "import of site-photos")]


def test_bank_relabel_history_stats_and_list_speak_catalogue_classes(sample_photos, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich tables stay on one line each
    home = str(tmp_path / "home")
    dataset = make_yolo(tmp_path / "site-photos", sample_photos[:1], ["0 0.5 0.5 0.2 0.2\n"], ["hard_hat"])
    assert bank("import", str(dataset), "--home", home, "--map", "hard_hat=helmet").returncode == 0
    case_id = json.loads(bank("list", "--home", home, "--json").stdout)[0]["id"]
    labels = tmp_path / "fixed.txt"
    labels.write_text("0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n")

    done = bank("relabel", str(case_id), "--home", home, "--labels", str(labels), "--classes", "helmet,no_helmet",
                "--reason", "a second worker without a helmet", "--by", "li.wei")
    assert done.returncode == 0, done.stderr
    assert f"case {case_id}: label version 2 (1 box added (no_helmet))" in done.stdout
    history = bank("history", str(case_id), "--home", home).stdout
    assert "label version 1, recorded by dataset site-photos" in history
    assert "label version 2 (current), relabel by li.wei" in history and "a second worker without a helmet" in history

    stats = bank("stats", "--home", home)
    assert "boxes per class: helmet 1, no_helmet 1" in stats.stdout and "hard_hat" not in stats.stdout
    listed = bank("list", "--home", home)
    assert "helmet 1, no_helmet 1" in listed.stdout and "v2" in listed.stdout


def test_bank_relabel_errors_are_one_clear_line(sample_photos, tmp_path):
    home = str(tmp_path / "home")
    dataset = make_yolo(tmp_path / "site-photos", sample_photos[:1], ["0 0.5 0.5 0.2 0.2\n"], ["helmet"])
    assert bank("import", str(dataset), "--home", home).returncode == 0
    case = str(json.loads(bank("list", "--home", home, "--json").stdout)[0]["id"])
    for case_id, text, message in [
        ("999", "0 0.5 0.5 0.2 0.2\n", "no case 999"),
        (case, "0 0.5 0.5 0.2 0.2\n0 0.5\n", "line 2: expected 'class cx cy w h' or a polygon, got 1 numbers"),
        (case, "12 0.5 0.5 0.2 0.2\n", "line 1: class index 12 out of range 0..7"),
    ]:
        labels = tmp_path / "fixed.txt"
        labels.write_text(text)
        done = bank("relabel", case_id, "--home", home, "--labels", str(labels), "--reason", "fix")
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
