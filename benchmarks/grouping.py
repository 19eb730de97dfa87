"""How well our leakage groups agree with the datasets' reference `leak_cluster` (groups.tsv).

For each Hamming distance, prints pairwise precision and recall of our grouping against the
reference, the number of groups, and how many reference clusters we split across groups (a
split reference cluster could straddle train/val/test). Run from the repository root:

    python benchmarks/grouping.py [--distances 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

from hazardvision.bank.groups import Member, assign_groups, compare_groupings, dhash
from hazardvision.images import load_image

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAMES = ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distances", default="0,1,2,3,4")
    args = parser.parse_args()
    members: dict[str, list[Member]] = {}
    reference: dict[str, dict[str, str]] = {}
    start = time.perf_counter()
    for name in NAMES:
        rows = list(csv.DictReader((DATASETS / name / "groups.tsv").open(), delimiter="\t"))
        folder = {p.name: p for p in (DATASETS / name / "images").glob("*/*")}
        members[name] = [Member(f"{name}/{r['file']}", name, r["file"], *dhash(load_image(folder[r["file"]]).pixels))
                         for r in rows]
        reference[name] = {f"{name}/{r['file']}": f"{name}/{r['leak_cluster']}" for r in rows}
    print(f"hashed {sum(len(m) for m in members.values())} photos in {time.perf_counter() - start:.1f} s")
    print(f"{'distance':>8} {'dataset':>16} {'precision':>9} {'recall':>7} {'groups':>6} {'reference':>9} {'split':>5}")
    for distance in (int(d) for d in args.distances.split(",")):
        for name in (*NAMES, "all"):
            group = [m for n in NAMES for m in members[n]] if name == "all" else members[name]
            ref = {k: v for n in NAMES for k, v in reference[n].items()} if name == "all" else reference[name]
            ours = assign_groups(group, distance)
            quality = compare_groupings(ours, ref)
            spread: dict[str, set[str]] = defaultdict(set)
            for item, cluster in ref.items():
                spread[cluster].add(ours[item])
            split = sum(len(g) > 1 for g in spread.values())
            print(f"{distance:>8} {name:>16} {quality.precision:>9.3f} {quality.recall:>7.3f} {quality.groups:>6} "
                  f"{quality.reference_groups:>9} {split:>5}")


if __name__ == "__main__":
    main()
