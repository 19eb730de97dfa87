"""An import killed with SIGKILL at any point leaves a consistent bank, and resuming completes it."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hazardvision.bank.bank import SampleBank
from tests.conftest import DATASETS

SCRIPT = Path(sys.executable).with_name("hazardvision")
PHOTOS = 300
KILLS = 12  # spread over the whole import (photo n*300/14), each a fresh process: about 3.5 s a kill


def subset(root: Path) -> Path:
    """The first PHOTOS training photos of fire-smoke with their labels, as symlinks."""
    for kind in ("images", "labels"):
        (root / kind / "train").mkdir(parents=True)
    for photo in sorted((DATASETS / "fire-smoke" / "images" / "train").iterdir())[:PHOTOS]:
        os.symlink(photo, root / "images" / "train" / photo.name)
        os.symlink(DATASETS / "fire-smoke" / "labels" / "train" / f"{photo.stem}.txt",
                   root / "labels" / "train" / f"{photo.stem}.txt")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames: ['fire', 'default', 'smoke']\n")
    return root / "data.yaml"


def committed_cases(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM cases").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet


def start_import(data: Path, home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(SCRIPT), "bank", "import", str(data), "--home", str(home), "--drop", "default",
                             "--batch-size", "4", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_import_killed_at_many_points_stays_consistent_and_resumes(datasets, tmp_path):
    data = subset(tmp_path / "data")
    home = tmp_path / "bank"
    partial = 0
    delays = random.Random(0)
    for kill in range(KILLS):
        target = (kill + 1) * PHOTOS // (KILLS + 2)
        process = start_import(data, home)
        deadline = time.monotonic() + 120
        while committed_cases(home / "bank.sqlite3") < target and process.poll() is None:
            assert time.monotonic() < deadline, "import made no progress"
            time.sleep(0.005)
        # A random extra wait spreads the kill over the phases of a batch: reading, journalling,
        # writing files, committing.
        time.sleep(delays.uniform(0, 0.06))
        process.send_signal(signal.SIGKILL)
        process.wait()
        bank = SampleBank(home)  # reopening recovers what the killed writer left
        assert bank.verify() == [], f"kill {kill}: inconsistent bank"
        cases = bank.stats().cases
        partial += 0 < cases < PHOTOS
        bank.engine.dispose()
    assert partial >= KILLS - 3, f"only {partial} kills left a partly imported bank"

    finished = subprocess.run([str(SCRIPT), "bank", "import", str(data), "--home", str(home), "--drop", "default"],
                              capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    bank = SampleBank(home)
    assert bank.verify() == []
    stats = bank.stats()
    labels = [(DATASETS / "fire-smoke" / "labels" / "train" / f"{p.stem}.txt").read_text().split("\n")
              for p in sorted((tmp_path / "data" / "images" / "train").iterdir())]
    expected = {"fire": 0, "smoke": 0}
    for rows in labels:
        for row in rows:
            if row.strip() and row.split()[0] != "1":
                expected["fire" if row.split()[0] == "0" else "smoke"] += 1
    assert stats.cases == PHOTOS == stats.images
    assert stats.annotations == {k: v for k, v in expected.items() if v}
    assert len(list(bank.store.files())) == PHOTOS


def test_bank_opened_during_an_import_leaves_its_pending_photos_alone(datasets, tmp_path):
    """Readers open (and would recover) the bank while an import writes: nothing may be lost."""
    data = subset(tmp_path / "data")
    home = tmp_path / "bank"
    process = start_import(data, home)
    opened = 0
    while process.poll() is None:
        SampleBank(home).engine.dispose()
        opened += 1
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    bank = SampleBank(home)
    assert opened > 10
    assert bank.verify() == [] and bank.stats().cases == PHOTOS


def test_two_imports_at_once_both_finish_without_duplicates(datasets, tmp_path):
    data = subset(tmp_path / "data")
    home = tmp_path / "bank"
    first, second = start_import(data, home), start_import(data, home)
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    bank = SampleBank(home)
    assert bank.verify() == [] and bank.stats().cases == PHOTOS
