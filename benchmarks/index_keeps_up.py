"""An index that keeps up: reindex against plain scan throughput, and one review with 100,000 instances.

(a) Reindex against scan, same photos, same process: `--photos` real photos of the test splits are
imported into a temporary bank; then, alternating, the plain scanner (every active pack's detector,
one photo per call, read from disk as `hazardvision scan` does) and `sync_indexes(rebuild=True)` (what
`bank reindex --rebuild` runs: batched forward passes, box and photo vectors, thumbnails, files) each
go over all of them, `--repeat` times; medians of photos/s and their ratio. The progress callback's
estimate of the time left at 25% and 50% (the linear estimate `bank reindex`'s bar shows) is checked
against the time it really took.

(b) One review with a bank of 100,000 indexed instances: a bank of a few real photos plus synthetic
cases (10 instances each, rows in the database, no photo files) whose vectors are real embeddings plus
noise, as `benchmarks/similar_speed.py` makes them. `hazardvision serve` runs on it; a real photo is
scanned, its first finding confirmed; printed: the review request's time and the time from the
request until a scan of the re-encoded photo lists the new instance as a similar case (median of
`--reviews` reviews). With `--before REV` the same is done with the package as it was at git revision
REV (exported with `git archive` into a temporary folder, with its own freshly built bank), the code
path before this change.

(c) `bank import` and `bank delete` with a bank of 100,000 indexed instances (the bank of (b)): each
round imports `--import-photos` new real photos with `hazardvision bank import` and deletes them again
with `hazardvision bank delete`, as a user runs them (a process each, the index kept up by the
command); printed: the medians over `--rounds` rounds of each command's time, beside that of
`hazardvision bank stats` (the process start and imports every command pays). With `--before REV`
also with the package at REV, on a bank of its own.

    python benchmarks/index_keeps_up.py [--photos 96] [--repeat 3] [--instances 100000] [--reviews 3]
        [--before ac0e0df] [--skip-throughput] [--skip-review] [--skip-commands] [--rounds 3]
        [--import-photos 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image as PILImage
from sqlalchemy import insert, select

import hazardvision
from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import import_dataset
from hazardvision.catalogue import load_catalogue
from hazardvision.data.bank_records import Annotation, Case, Image, Source
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import read_dataset
from hazardvision.images import load_image
from hazardvision.packs.registry import active_packs
from hazardvision.scan import Scanner
from hazardvision.similar import vector_index
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.maintenance import sync_indexes
from hazardvision.training.data import bundled_mapping

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
NAMES = ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")
NOISE = 0.35
PER_CASE = 10
REAL_PHOTOS = 12


def pick_photos(count: int) -> list[Path]:
    per = [sorted((DATASETS / n / "images" / "test").iterdir()) for n in NAMES]
    return [p for group in zip(*per, strict=False) for p in group][:count]


def yolo_folder(root: Path, dataset: str, photos: list[Path]) -> Path:
    """A YOLO dataset of these photos of `dataset`'s test split, with their labels."""
    source = DATASETS / dataset
    (root / "images" / "test").mkdir(parents=True)
    (root / "labels" / "test").mkdir(parents=True)
    for photo in photos:
        shutil.copy(photo, root / "images" / "test" / photo.name)
        label = source / "labels" / "test" / f"{photo.stem}.txt"
        if label.is_file():
            shutil.copy(label, root / "labels" / "test" / label.name)
    shutil.copy(source / "data.yaml", root / "data.yaml")
    return root


def import_photos(home: Path, photos: list[Path], work: Path) -> None:
    """Import the photos with their labels, as the bundled recipes map their datasets."""
    bank = SampleBank(home)
    for name in NAMES:
        mine = [p for p in photos if p.parts[-4] == name]
        if mine:
            dataset = read_dataset(yolo_folder(work / name, name, mine), name)
            mapping, drop = bundled_mapping(name)
            import_dataset(bank, dataset, build_class_map(dataset.classes, load_catalogue(), mapping, drop))
    bank.engine.dispose()


# -- (a) reindex against scan


def throughput(photos: int, repeat: int) -> None:
    """(a): photos/s of the plain scan and of a rebuild, and the progress estimate's error."""
    chosen = pick_photos(photos)
    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "home"
        import_photos(home, chosen, Path(work))
        bank = SampleBank(home)
        packs = active_packs(home=home)
        scanner = Scanner(packs, load_catalogue())
        scanner.scan([load_image(chosen[0])], ["warm"])
        sync_indexes(bank, packs, rebuild=True)  # warm: sessions, files
        scans, reindexes, etas = [], [], []
        for _ in range(repeat):
            start = time.perf_counter()
            for photo in chosen:
                scanner.scan([load_image(photo)], [photo.name])
            scans.append(len(chosen) / (time.perf_counter() - start))
            steps: list[tuple[str, float, int, int]] = []

            def step(pack: str, done: int, total: int, steps: list[tuple[str, float, int, int]] = steps) -> None:
                steps.append((pack, time.perf_counter(), done, total))

            start = time.perf_counter()
            sync_indexes(bank, packs, rebuild=True, compact=True, progress=step)
            end = time.perf_counter()
            reindexes.append(len(chosen) / (end - start))
            etas.append(eta_errors(steps, start))
        scan_rate, reindex_rate = statistics.median(scans), statistics.median(reindexes)
        print(f"(a) {len(chosen)} test photos of {', '.join(NAMES)}, packs {', '.join(p.name for p in packs)}, "
              f"{repeat} rounds alternating; medians:")
        print(f"    plain scan {scan_rate:.2f} photos/s, reindex --rebuild {reindex_rate:.2f} photos/s: "
              f"ratio {reindex_rate / scan_rate:.2f} (target >= 0.8)")
        for label, index in (("25%", 0), ("50%", 1)):
            print(f"    progress bar's time left at {label}, against the time it took: "
                  + ", ".join(f"{e[index]:+.0%}" for e in etas))


def eta_errors(steps: list[tuple[str, float, int, int]], start: float) -> tuple[float, float]:
    """The bar's linear estimate of a pack's time left at 25% and 50% of its photos, as a relative error against
    the time that was really left; the median over the packs (each pack has its own bar)."""
    errors: tuple[list[float], list[float]] = ([], [])
    for pack in dict.fromkeys(step[0] for step in steps):
        mine = [step for step in steps if step[0] == pack]
        begun = start if steps.index(mine[0]) == 0 else steps[steps.index(mine[0]) - 1][1]
        end = mine[-1][1]
        for share, out in ((0.25, errors[0]), (0.5, errors[1])):
            at = next(step for step in mine if step[2] >= share * step[3])
            elapsed, left = at[1] - begun, end - at[1]
            estimate = elapsed / at[2] * (at[3] - at[2])
            if left > 0:
                out.append(estimate / left - 1)
    return statistics.median(errors[0] or [0.0]), statistics.median(errors[1] or [0.0])


# -- (b) one review at 100,000 instances


def build_big_bank(home: Path, instances: int, work: Path) -> None:
    """A bank of a few real photos and synthetic cases, indexed: real vectors plus noise for the rest."""
    import_photos(home, pick_photos(REAL_PHOTOS), work)
    bank = SampleBank(home)
    packs = active_packs(home=home)
    sync_indexes(bank, packs)
    pack = max(packs, key=lambda p: len(CaseIndex(home, p)["instances"]))  # the pack the synthetic cases are of
    cases = instances // PER_CASE
    with bank.database.session() as session:
        source = session.scalars(select(Source.id)).first()
        first_case = (session.scalars(select(Case.id).order_by(Case.id.desc())).first() or 0) + 1
        session.execute(insert(Image), [
            {"sha256": f"{i:064x}", "width": 640, "height": 640, "format": "jpg", "size_bytes": 1, "dhash": i,
             "dhash_bilinear": i} for i in range(cases)])
        session.execute(insert(Case), [
            {"id": first_case + i, "image_sha256": f"{i:064x}", "source_id": source, "source_file": f"synthetic/{i}"}
            for i in range(cases)])
        classes = list(pack.card.classes)
        session.execute(insert(Annotation), [
            {"case_id": first_case + i // PER_CASE, "class_name": classes[i % len(classes)], "x1": 10.0, "y1": 10.0,
             "x2": 100.0, "y2": 100.0, "origin": "imported"} for i in range(cases * PER_CASE)])
    index = CaseIndex(home, pack)
    rng = np.random.default_rng(0)
    with bank.database.session() as session:
        rows = session.execute(select(Annotation.id, Annotation.case_id, Annotation.class_name)
                               .where(Annotation.case_id >= first_case)).all()
    for kind, ids, case_ids, names in (
        ("instances", [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
        ("photos", list(range(first_case, first_case + cases)), list(range(first_case, first_case + cases)),
         [""] * cases),
    ):
        held = index[kind]
        real = np.stack([held.vector(i) for i in sorted(held.ids())])
        noisy = real[rng.integers(0, len(real), len(ids))] + rng.normal(
            scale=NOISE / np.sqrt(real.shape[1]), size=(len(ids), real.shape[1]))
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        every = np.concatenate([real, noisy]).astype(np.float32)
        keep = sorted(held.ids())
        index.indexes[kind] = vector_index.VectorIndex.build(
            every, np.array(keep + ids, np.int64), np.array([held.case_of[i] for i in keep] + case_ids, np.int64),
            [held.class_of[i] for i in keep] + names)
    with open(index.folder / "index.npz", "wb") as handle:
        vector_index.save_indexes(handle, index.indexes)  # the base file, as a compaction writes it
    problems = CaseIndex(home, pack).verify(bank)
    assert not problems, problems

    count = len(CaseIndex(home, pack)["instances"])
    print(f"    package {Path(hazardvision.__file__).parent}, bank at {home}: {count:,} indexed instances of "
          f"{pack.name}", flush=True)


def time_reviews(home: Path, reviews: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Review request times and times until searchable (ms) through `hazardvision serve` on `home`."""
    key = subprocess.run([sys.executable, "-m", "hazardvision", "keys", "create", "--role", "admin", "--name",
                          "bench", "--home", str(home)], capture_output=True, text=True, env=env, check=True,
                         cwd=env.get("BENCH_CWD", str(REPO))).stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "hazardvision", "serve", "--home", str(home), "--port",
                               str(port)], env=env, cwd=env.get("BENCH_CWD", str(REPO)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    requests: list[float] = []
    searchable: list[float] = []
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "the service did not become ready"
                time.sleep(0.5)
            photos = [p for p in sorted((DATASETS / "ppe-vest" / "images" / "test").iterdir())[40:]]
            for photo in photos:
                if len(requests) == reviews:
                    break
                scan = client.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json()
                if not scan.get("findings"):
                    continue
                start = time.perf_counter()
                review = client.post(f"/v1/findings/{scan['findings'][0]['id']}/review",
                                     json={"decision": "confirm"})
                requests.append((time.perf_counter() - start) * 1000)
                assert review.status_code == 201, review.text
                annotation = review.json()["annotation_id"]
                again = reencoded(photo)
                while True:
                    found = client.post("/v1/scans", files={"image": ("again.jpg", again)}).json()
                    if any(c["annotation_id"] == annotation for f in found["findings"] for c in f["similar_cases"]):
                        break
                    assert time.perf_counter() - start < 300, "the review never became a similar case"
                    time.sleep(0.05)
                searchable.append((time.perf_counter() - start) * 1000)
    finally:
        server.terminate()
        server.wait(60)
    return requests, searchable


def reencoded(photo: Path) -> bytes:
    buffer = io.BytesIO()
    PILImage.open(photo).convert("RGB").save(buffer, "JPEG", quality=75)
    return buffer.getvalue()


def package_env(pythonpath: Path | None) -> dict[str, str]:
    """The environment of the processes run: the home's own SQLite database, and the package under test (this
    tree's, or the one at `pythonpath`, run from there)."""
    env = {key: value for key, value in os.environ.items() if key != "HAZARDVISION_DATABASE_URL"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
        env["BENCH_CWD"] = str(pythonpath)
    return env


def big_bank_of_package(home: Path, instances: int, env: dict[str, str]) -> None:
    """A bank of `instances` indexed instances at `home`, built by the package under test (`--build-big-bank`)."""
    subprocess.run([sys.executable, __file__, "--build-big-bank", str(home), "--instances", str(instances)],
                   env=env, cwd=env.get("BENCH_CWD", str(REPO)), check=True)


def one_review(label: str, instances: int, reviews: int, pythonpath: Path | None) -> None:
    env = package_env(pythonpath)
    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "home"
        big_bank_of_package(home, instances, env)
        requests, searchable = time_reviews(home, reviews, env)
    print(f"    {label}: review request {statistics.median(requests):.0f} ms (each: "
          f"{', '.join(f'{t:.0f}' for t in requests)}), searchable after {statistics.median(searchable):.0f} ms "
          f"(each: {', '.join(f'{t:.0f}' for t in searchable)})", flush=True)


# -- (c) bank import and bank delete at 100,000 instances


def time_commands(home: Path, rounds: int, photos: int, env: dict[str, str], work: Path) -> dict[str, list[float]]:
    """Seconds of `bank stats`, `bank import` (of `photos` new photos) and `bank delete` (of those), per round.
    Everything goes through the package under test (the bank of `--before` has its schema, not this tree's)."""
    cwd = env.get("BENCH_CWD", str(REPO))
    fresh = sorted((DATASETS / "ppe-vest" / "images" / "test").iterdir())[60:]
    times: dict[str, list[float]] = {"bank stats": [], "bank import": [], "bank delete": []}

    def run(*args: str) -> tuple[float, str]:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "hazardvision", *args, "--home", str(home)], env=env, cwd=cwd,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
        return time.perf_counter() - start, done.stdout

    mapping, drop = bundled_mapping("ppe-vest")
    options = [arg for k, v in mapping.items() for arg in ("--map", f"{k}={v}")] + [
        arg for name in drop for arg in ("--drop", name)]
    for number in range(rounds):
        source = f"round-{number}"
        folder = yolo_folder(work / source, "ppe-vest", fresh[number * photos : (number + 1) * photos])
        times["bank stats"].append(run("bank", "stats")[0])
        times["bank import"].append(run("bank", "import", str(folder), "--name", source, *options)[0])
        added = [str(case["id"]) for case in json.loads(run("bank", "list", "--source", source, "--json")[1])]
        assert len(added) == photos, f"{len(added)} cases imported of {photos} photos"
        times["bank delete"].append(run("bank", "delete", *added)[0])
    # The commands kept the index exact (`bank verify` would also say that the synthetic cases have no photo files).
    check = ("import sys; from pathlib import Path; from hazardvision.bank.bank import SampleBank; "
             "from hazardvision.packs.registry import active_packs; "
             "from hazardvision.similar.maintenance import verify_indexes; home = Path(sys.argv[1]); "
             "problems = verify_indexes(SampleBank(home), active_packs(home=home), required=True); "
             "print(*problems, sep='\\n'); sys.exit(1 if problems else 0)")
    done = subprocess.run([sys.executable, "-c", check, str(home)], env=env, cwd=cwd, capture_output=True, text=True,
                          check=False)
    print(f"      index after the rounds: {'exact' if done.returncode == 0 else done.stdout + done.stderr}", flush=True)
    return times


def commands(label: str, instances: int, rounds: int, photos: int, pythonpath: Path | None) -> None:
    env = package_env(pythonpath)
    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "home"
        big_bank_of_package(home, instances, env)
        times = time_commands(home, rounds, photos, env, Path(work))
    print(f"    {label}: " + ", ".join(f"{name} {statistics.median(each):.2f} s (each: "
                                       f"{', '.join(f'{t:.2f}' for t in each)})" for name, each in times.items()),
          flush=True)


def export_revision(revision: str, folder: Path) -> Path:
    """The package as it was at `revision`, beside the repository's models and catalogue."""
    archive = subprocess.run(["git", "archive", revision, "hazardvision"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    for shared in ("models", "samples", "training", "pyproject.toml"):
        (folder / shared).symlink_to(REPO / shared)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=3)
    parser.add_argument("--before", help="git revision whose package is the 'before' of (b)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-review", action="store_true")
    parser.add_argument("--skip-commands", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="(c): import and delete rounds")
    parser.add_argument("--import-photos", type=int, default=3, help="(c): photos imported per round")
    parser.add_argument("--build-big-bank", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_big_bank:
        with tempfile.TemporaryDirectory() as work:
            build_big_bank(args.build_big_bank, args.instances, Path(work))
        return
    if not args.skip_throughput:
        throughput(args.photos, args.repeat)
    if not args.skip_review:
        print(f"(b) one review with a bank of {args.instances:,} indexed instances ({args.reviews} reviews, medians):",
              flush=True)
        if args.before:
            with tempfile.TemporaryDirectory() as old:
                one_review(f"before ({args.before})", args.instances, args.reviews,
                           export_revision(args.before, Path(old)))
        one_review("after (this tree)", args.instances, args.reviews, None)
    if not args.skip_commands:
        print(f"(c) bank import and bank delete of {args.import_photos} photos with a bank of {args.instances:,} "
              f"indexed instances ({args.rounds} rounds, medians):", flush=True)
        if args.before:
            with tempfile.TemporaryDirectory() as old:
                commands(f"before ({args.before})", args.instances, args.rounds, args.import_photos,
                         export_revision(args.before, Path(old)))
        commands("after (this tree)", args.instances, args.rounds, args.import_photos, None)


if __name__ == "__main__":
    main()
