"""How many workers a ppe pack sees on photos from sources it was not scored on.

A ppe pack reports heads (helmet, no_helmet) and torsos (vest, no_vest), not people, so mAP cannot
be computed on a dataset that labels only `person`. This measures coverage instead: the share of
labelled people for whom the pack reports a head box (centre inside the top 40% of the person's
box) and a torso box (centre inside the person's box, below the head band), at the pack's
operating confidence. forklift-person (warehouses, a source no pack trains on) is the
generalisation check; hardhat-head's persons show the same figure on a source the pack trains on.

    python benchmarks/worker_coverage.py models/ppe/0.1.0 models/ppe/0.2.0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hazardvision.datasets.readers import read_yolo
from hazardvision.images import load_image
from hazardvision.packs.model_pack import ModelPack, load_pack
from hazardvision.resources import default_datasets

HEAD_BAND = 0.4
HEADS = {"helmet", "no_helmet"}
TORSOS = {"vest", "no_vest"}
PERSON_SETS = {"forklift-person": "person", "hardhat-head": "person"}


def coverage(pack: ModelPack, data_yaml: Path, person_class: str) -> tuple[int, float, float]:
    """(people, share with a head box, share with a torso box) on the dataset's test split."""
    people = heads = torsos = 0
    for sample in (f for f in read_yolo(data_yaml).files if f.split == "test" and not f.errors):
        photo = load_image(sample.image)
        found = pack.detect([photo.pixels])[0]
        centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
        names = found.class_name.astype(str)
        for box in sample.boxes:
            if box.source_class != person_class:
                continue
            x1, y1, x2, y2 = box.pixels(photo.width, photo.height)
            band = y1 + HEAD_BAND * (y2 - y1)
            inside = (centres[:, 0] >= x1) & (centres[:, 0] <= x2) & (centres[:, 1] >= y1) & (centres[:, 1] <= y2)
            people += 1
            heads += bool(np.any(inside & (centres[:, 1] <= band) & np.isin(names, list(HEADS))))
            torsos += bool(np.any(inside & (centres[:, 1] > band) & np.isin(names, list(TORSOS))))
    return people, heads / max(people, 1), torsos / max(people, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", type=Path, help="ppe pack version folders, e.g. models/ppe/0.2.0")
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    args = parser.parse_args()
    packs = [load_pack(folder) for folder in args.versions]
    print(f"{'dataset':<16} {'people':>6} " + " ".join(f"{p.card.version + ' head/torso':>18}" for p in packs))
    for dataset, person_class in PERSON_SETS.items():
        rows = [coverage(pack, args.datasets / dataset / "data.yaml", person_class) for pack in packs]
        print(f"{dataset:<16} {rows[0][0]:>6} " + " ".join(f"{head:>11.3f}/{torso:.3f}" for _, head, torso in rows))


if __name__ == "__main__":
    main()
