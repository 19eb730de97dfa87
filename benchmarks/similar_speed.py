"""Similar-case speed: top-10 query latency at 100,000 and 1,000,000 vectors, and the cost in a scan.

Vectors are synthetic but shaped like real ones: each is a real instance embedding from a bank's
index (the one `benchmarks/similar_quality.py` builds) plus Gaussian noise, so that they cluster
as real embeddings do. For each size the script times single top-10 queries on the exact (flat)
index and on the approximate (IVF) index the project switches to, and measures the approximate
index's recall@10 against exact search. Then it scans real photos with and without the
similar-case step, in the same process, and prints the ratio.

    python benchmarks/similar_speed.py --home /tmp/hv-similar-bank [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from hazardvision.bank.bank import SampleBank
from hazardvision.catalogue import load_catalogue
from hazardvision.images import decode_image
from hazardvision.packs.letterbox import letterbox
from hazardvision.packs.registry import active_packs
from hazardvision.scan import Scanner
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.search import SimilarCaseSearch
from hazardvision.similar.vector_index import VectorIndex

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
QUERIES = 300
NOISE = 0.35
"""Length of the noise added to each real vector (before normalising again)."""


def synthetic(real: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((count, real.shape[1]), np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        rows = real[rng.integers(0, len(real), n)] + rng.normal(scale=NOISE / np.sqrt(real.shape[1]),
                                                                size=(n, real.shape[1]))
        out[start : start + n] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def latencies(index: VectorIndex, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        hits = index.search(query[None], 10)[0]
        times.append((time.perf_counter() - start) * 1000)
        found.append([hit.id for hit in hits])
    return times, found


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="an indexed bank (see similar_quality.py)")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--scan-photos", type=int, default=40)
    args = parser.parse_args()
    bank = SampleBank(args.home)
    packs = active_packs()
    ppe = next(p for p in packs if p.name == "ppe")
    real_index = CaseIndex(bank.home, ppe)["instances"]
    real = np.stack([real_index.vector(i) for i in sorted(real_index.ids())])
    print(f"{len(real)} real {real.shape[1]}-d instance vectors from {args.home}", flush=True)
    rng = np.random.default_rng(0)

    for size in (int(s) for s in args.sizes.split(",") if s):
        vectors = synthetic(real, size, rng)
        queries = synthetic(real, QUERIES, rng)
        ids = np.arange(size, dtype=np.int64)
        labels = ["x"] * size
        start = time.perf_counter()
        exact = VectorIndex.build(vectors, ids, ids, labels, approximate=False)
        exact_build = time.perf_counter() - start
        exact_times, truth = latencies(exact, queries)
        del exact
        start = time.perf_counter()
        approx = VectorIndex.build(vectors, ids, ids, labels, approximate=True)
        approx_build = time.perf_counter() - start
        approx_times, found = latencies(approx, queries)
        recall = statistics.mean(len(set(a) & set(t)) / 10 for a, t in zip(found, truth, strict=True))
        print(f"\n{size:,} vectors, top-10, {QUERIES} single queries")
        print(f"  exact  (flat):  p50 {percentile(exact_times, 50):6.2f} ms  p99 {percentile(exact_times, 99):6.2f} ms"
              f"  (built in {exact_build:.1f} s)")
        print(f"  approx (IVF {approx.index.nlist} lists, nprobe {approx._nprobe()}): "
              f"p50 {percentile(approx_times, 50):6.2f} ms  p99 {percentile(approx_times, 99):6.2f} ms  "
              f"recall@10 {recall:.3f}  (built in {approx_build:.1f} s)", flush=True)
        del approx, vectors

    photos = sorted((DATASETS / "ppe-vest" / "images" / "test").iterdir())[: args.scan_photos]
    catalogue = load_catalogue()
    plain = Scanner(packs, catalogue)
    similar = Scanner(packs, catalogue, similar=SimilarCaseSearch.open(bank, packs, catalogue))
    as_given = [p.read_bytes() for p in photos]
    site_sized = [site_photo(data) for data in as_given]
    for label, payloads in (("the test photos as they are (416x416 JPEG)", as_given),
                            ("the same photos letterboxed to 1280x720 JPEG, as a site camera sends them", site_sized)):
        for scanner in (plain, similar):  # warm up both sessions
            scanner.scan([decode_image(payloads[0])], ["warm"])
        rounds: dict[str, list[float]] = {"plain": [], "similar": []}
        for _ in range(3):
            for name, scanner in (("plain", plain), ("similar", similar)):
                for data in payloads:
                    start = time.perf_counter()
                    scanner.scan([decode_image(data)], ["photo"])  # bytes to result, as the service does
                    rounds[name].append((time.perf_counter() - start) * 1000)
        plain_ms, similar_ms = statistics.median(rounds["plain"]), statistics.median(rounds["similar"])
        print(f"\nscan of {len(payloads)} ppe-vest test photos x 3 rounds, {label}; median per photo: "
              f"without similar cases {plain_ms:.1f} ms, with {similar_ms:.1f} ms: "
              f"the similar-case step adds {100 * (similar_ms / plain_ms - 1):.1f}%")


def site_photo(data: bytes) -> bytes:
    """A photo letterboxed into a 1280x720 JPEG."""
    canvas, _ = letterbox(decode_image(data).pixels, 720, 1280, 720, 1280)
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


if __name__ == "__main__":
    main()
