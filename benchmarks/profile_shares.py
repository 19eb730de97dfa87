"""Where a process's time goes: py-spy's sampled stacks folded into the serving steps.

`record(pid, seconds, out)` samples a running process with py-spy (`pip install py-spy`; it reads the
process's memory, so it needs the same user or root) into a raw collapsed-stack file; `shares(out)`
gives each step's share of the samples of busy threads. A sample is counted under the innermost frame
that names a step, so time in SQLAlchemy called from the audit log is database time, and time in
onnxruntime's native code is counted under the Python call that entered it.

    python benchmarks/profile_shares.py STACKS.txt     # the shares of a file recorded earlier
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model inference (onnxruntime)", ("onnxruntime/",)),
    ("photo decode (OpenCV, header checks)", ("imdecode", "hazardvision/images.py")),
    ("letterbox and resize", ("letterbox",)),
    ("boxes: decode, NMS, merge", ("hazardvision/packs/detector.py", "hazardvision/boxes.py",
                                   "hazardvision/detections.py", "hazardvision/packs/tiling.py")),
    ("frame quality check", ("frame_quality",)),
    ("similar cases (embedding, search)", ("hazardvision/similar/",)),
    ("database (SQLAlchemy, drivers)", ("sqlalchemy/", "sqlite3", "psycopg")),
    ("photo store (files)", ("image_store.py", "photo_location.py", "service/archive.py")),
    ("audit chain (hashing, MAC)", ("data/audit.py",)),
    ("results: catalogue, JSON, pydantic", ("pydantic", "json/", "hazardvision/results.py", "catalogue.py",
                                            "fastapi/encoders.py", "orjson")),
    ("HTTP, multipart and the event loop", ("uvicorn/", "h11", "starlette/", "multipart", "fastapi/",
                                            "asyncio/", "anyio/")),
    ("service scheduling (batcher, workers)", ("service/batcher.py", "concurrent/futures", "threading.py")),
)
OTHER = "other"


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy sampling `pid` for `seconds` into `out` (raw collapsed stacks); the caller waits on it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy not found: pip install py-spy (the [dev] extra has it)")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(max(int(seconds), 1)),
                             "--rate", "50", "--format", "raw", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def step_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        for step, needles in STEPS:
            if any(needle in frame for needle in needles):
                return step
    return OTHER


def shares(stacks: Path) -> list[tuple[str, float, int]]:
    """(step, share of busy samples, samples), largest first."""
    counts: Counter[str] = Counter()
    for line in stacks.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if stack and number.isdigit():
            counts[step_of(stack.split(";"))] += int(number)
    total = sum(counts.values()) or 1
    return [(step, n / total, n) for step, n in counts.most_common()]


def print_shares(stacks: Path, indent: str = "  ") -> None:
    rows = shares(stacks)
    print(f"{indent}{sum(n for _, _, n in rows)} samples of busy threads (py-spy, 50 a second per thread)")
    for step, share, _ in rows:
        print(f"{indent}{step:<40} {share * 100:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stacks", type=Path, help="a raw collapsed-stack file from py-spy record --format raw")
    print_shares(parser.parse_args().stacks)


if __name__ == "__main__":
    main()
