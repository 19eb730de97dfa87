"""Similar-case quality on the real datasets: same-class precision@5 and near-duplicate recall.

Builds a bank from the train splits of ../shared/datasets, leaving out one augmented copy of each
original that has several (Roboflow copies share an original: `<orig>.rf.<hash>`), indexes it with
the active packs, then
- queries with every ground-truth box of the test splits (class filter off) and counts how many of
  the top 5 cases share the query's class (precision@5, per class);
- queries with each held-out copy, box by box and as a whole photo, and counts how often the top
  case is a sibling (another copy of the same original): near-duplicate recall@1. Box queries use
  the upright photo, whole-photo queries its eight views (quarter turns, mirrored), as
  `hazardvision similar` does; the upright view alone is printed for comparison.

Near-duplicates are measured on ppe-vest and forklift-person, whose training folders hold
Roboflow's augmented copies (flips, quarter turns, noise). fire-smoke's repeated names are not
copies: `img_1018_jpg.rf.*` names two unrelated photos there (a merge of sources), so a "sibling"
would be a stranger. hardhat-head has no repeated originals.

    python benchmarks/similar_quality.py [--home DIR]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sqlalchemy import select

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import import_dataset
from hazardvision.catalogue import load_catalogue
from hazardvision.data.bank_records import Case
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import Dataset, SampleFile, read_dataset
from hazardvision.images import load_image
from hazardvision.packs.registry import active_packs
from hazardvision.similar.maintenance import sync_indexes
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.search import SimilarCaseSearch
from hazardvision.similar.views import photo_views
from hazardvision.training.data import bundled_mapping

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
MAPPINGS = {name: bundled_mapping(name) for name in ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")}
ANY_CLASS = SimilarQuery(k=5, same_class=False)
TOP = SimilarQuery(k=1, same_class=False)
COPIES = ("ppe-vest", "forklift-person")
"""Datasets whose repeated originals are augmented copies of one photo."""


def original(name: str) -> str:
    """The original a Roboflow copy was made from: its name without `.rf.<hash>`."""
    return re.sub(r"\.rf\.[0-9a-f]+", "", Path(name).stem)


def held_out(files: list[SampleFile]) -> set[str]:
    """One copy of each original that has several."""
    copies: dict[str, list[str]] = defaultdict(list)
    for sample in files:
        copies[original(sample.name)].append(sample.name)
    return {sorted(names)[0] for names in copies.values() if len(names) > 1}


def build_bank(home: Path) -> tuple[SampleBank, dict[str, list[SampleFile]], dict[str, list[SampleFile]]]:
    """The bank of train photos less the held-out copies; the held-out and the test files per dataset."""
    bank = SampleBank(home)
    catalogue = load_catalogue()
    held: dict[str, list[SampleFile]] = {}
    tests: dict[str, list[SampleFile]] = {}
    for name, (mapping, drop) in MAPPINGS.items():
        dataset = read_dataset(DATASETS / name)
        train = [f for f in dataset.files if f.split == "train" and not f.errors]
        out = held_out(train)
        held[name] = [f for f in train if f.name in out]
        tests[name] = [f for f in dataset.files if f.split == "test" and not f.errors]
        kept = Dataset(dataset.name, dataset.root, dataset.classes, [f for f in train if f.name not in out],
                       origin=dataset.origin, licence=dataset.licence)
        class_map = build_class_map(dataset.classes, catalogue, mapping, drop)
        report = import_dataset(bank, kept, class_map)
        in_bank = report.imported + report.already_in_bank
        print(f"{name}: {in_bank} train photos in the bank, {len(out)} copies held out, "
              f"{len(tests[name])} test photos", flush=True)
    return bank, held, tests


def class_of(name: str, box_class: str) -> str:
    for mapping, _ in MAPPINGS.values():
        if box_class in mapping:
            return mapping[box_class]
    return box_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="bank folder to build (default: a temporary one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="hv-similar-"))
    bank, held, tests = build_bank(home)  # into a bank this script built before, nothing new is added
    packs = active_packs()
    start = time.perf_counter()
    reports = sync_indexes(bank, packs)
    print(f"indexed in {time.perf_counter() - start:.0f} s: "
          + "; ".join(f"{p} {r.added}" for p, r in reports.items()), flush=True)
    search = SimilarCaseSearch.open(bank, packs, load_catalogue())
    pack_of = {c: p.name for p in packs for c in p.card.classes}
    with bank.database.session() as session:
        original_of = {cid: original(f) for cid, f in session.execute(select(Case.id, Case.source_file))}

    def box_queries(sample: SampleFile) -> dict[str, tuple[object, list[tuple[tuple[float, ...], str]]]]:
        photo = load_image(sample.image)
        h, w = photo.pixels.shape[:2]
        by_pack: dict[str, list[tuple[tuple[float, ...], str]]] = defaultdict(list)
        for box in sample.boxes:
            cls = class_of(sample.name, box.source_class)
            if cls in pack_of:
                by_pack[pack_of[cls]].append((box.pixels(w, h), cls))
        return {"photo": (photo, [])} | {p: (photo, boxes) for p, boxes in by_pack.items()}

    # Same-class precision@5 on the test splits' ground-truth boxes, class filter off.
    hits: dict[str, list[float]] = defaultdict(list)
    for files in tests.values():
        for sample in files:
            queries = box_queries(sample)
            photo = queries.pop("photo")[0]
            for pack_name, (_, boxes) in queries.items():
                pack = next(p for p in packs if p.name == pack_name)
                maps = pack.feature_maps([photo.pixels])[0]  # type: ignore[attr-defined]
                found = search.for_boxes(pack_name, maps, np.array([b for b, _ in boxes]), [c for _, c in boxes],
                                         ANY_CLASS)
                for (_, cls), cases in zip(boxes, found, strict=True):
                    hits[cls].append(sum(c.class_name == cls for c in cases) / 5)
    print("\nsame-class precision@5 on test boxes (class filter off)")
    for cls in sorted(hits):
        print(f"  {cls:10s} {np.mean(hits[cls]):.3f}  ({len(hits[cls])} queries)")
    print(f"  {'all':10s} {np.mean([v for values in hits.values() for v in values]):.3f}")

    # Near-duplicate recall@1: a held-out copy's boxes and whole photo must find a sibling first.
    ok: dict[str, list[bool]] = defaultdict(list)
    for name in COPIES:
        for sample in held[name]:
            queries = box_queries(sample)
            photo = queries.pop("photo")[0]
            views = [(view, {p.name: p.feature_maps([view])[0] for p in packs})
                     for view in photo_views(photo.pixels)]  # type: ignore[attr-defined]
            sibling = original(sample.name)

            def first(cases: list, sibling: str = sibling) -> bool:
                return bool(cases) and original_of[cases[0].case_id] == sibling

            ok["photo, upright"].append(first(search.for_photo(views[:1], TOP)))
            ok["photo, 8 views"].append(first(search.for_photo(views, TOP)))
            for pack_name, (_, boxes) in queries.items():
                for box, _cls in boxes:
                    ok["box"].append(first(search.for_box({pack_name: views[0][1][pack_name]}, box, None, TOP)))
    print(f"\nnear-duplicate recall@1 on {' and '.join(COPIES)} (a held-out copy finds a sibling first)")
    for label, values in ok.items():
        print(f"  {label:15s} {np.mean(values):.3f}  ({len(values)} queries)")
    print(f"\nbank at {home}")


if __name__ == "__main__":
    main()
