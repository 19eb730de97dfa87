"""Sample-bank speed on the real datasets: import (images/s) and snapshot time.

Imports the four datasets of ../shared/datasets into a fresh temporary bank (as the README maps
them), re-imports one to time the duplicate check, then freezes a source-split snapshot of the
PPE classes and a seeded group-split snapshot of every class.

    python benchmarks/bank_import.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import import_dataset
from hazardvision.bank.snapshot import SplitRule, make_snapshot
from hazardvision.catalogue import load_catalogue
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import read_dataset
from hazardvision.training.data import bundled_mapping

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MAPPINGS = {name: bundled_mapping(name) for name in ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")}


def timed_import(bank: SampleBank, name: str) -> tuple[int, float]:
    mapping, drop = MAPPINGS[name]
    dataset = read_dataset(DATASETS / name)
    class_map = build_class_map(dataset.classes, load_catalogue(), mapping, drop)
    start = time.perf_counter()
    report = import_dataset(bank, dataset, class_map)
    return report.files, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        bank = SampleBank(Path(home))
        total_files, total_seconds = 0, 0.0
        for name in MAPPINGS:
            files, seconds = timed_import(bank, name)
            total_files, total_seconds = total_files + files, total_seconds + seconds
            print(f"import {name:16} {files:5d} photos in {seconds:6.1f} s = {files / seconds:6.1f} images/s")
        print(f"import all              {total_files:5d} photos in {total_seconds:6.1f} s = "
              f"{total_files / total_seconds:6.1f} images/s")
        files, seconds = timed_import(bank, "ppe-vest")
        print(f"re-import ppe-vest      {files:5d} photos in {seconds:6.1f} s = {files / seconds:6.1f} images/s "
              "(all already in the bank)")
        for label, kwargs in [
            ("snapshot ppe (source split)", {"classes": ["helmet", "no_helmet", "vest", "no_vest"],
                                             "sources": ["ppe-vest", "hardhat-head"]}),
            ("snapshot all (group split)", {"classes": ["helmet", "no_helmet", "vest", "no_vest", "fire", "smoke",
                                                        "forklift", "person"], "split_rule": SplitRule.GROUP}),
        ]:
            start = time.perf_counter()
            manifest = make_snapshot(bank, **kwargs)  # type: ignore[arg-type]
            images = sum(c.images for c in manifest.counts.values())
            print(f"{label:28} {images:5d} photos in {time.perf_counter() - start:6.2f} s (id {manifest.id})")


if __name__ == "__main__":
    main()
