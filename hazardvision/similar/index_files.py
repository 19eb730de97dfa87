"""The files of one similar-case index: a base file and the small delta files written since.

A change to an index (a review, an import, a deletion) appends one delta file, `delta-<seq>.npz`,
holding the vectors it adds and the ids it removes (tombstones), instead of rewriting every vector:
at 100,000 instances the whole file is about 260 MB. A compaction rewrites the base with every
delta folded in and records the last sequence number it holds (`seq`), then deletes those deltas.
Each file is written to a temporary name, fsynced and renamed, so a crash leaves the previous
state readable: a delta is either there whole or not at all, and deltas at or below the base's
`seq` (left by a crash during a compaction) are skipped. Readers apply the deltas in order; a reader
that holds every delta a new base folds in (same `epoch`: compacted, not rebuilt) keeps what it has.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from hazardvision.home import private_opener
from hazardvision.packs.embedding import Vectors
from hazardvision.similar.vector_index import VectorIndex, load_indexes, save_indexes

INDEX_FILE = "index.npz"
DELTA = re.compile(r"delta-(\d{12})\.npz")


@dataclass
class Change:
    """What one delta does to one kind of index: ids removed, then vectors added."""

    removed: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    vectors: Vectors | None = None
    ids: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    case_ids: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    class_names: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(len(self.removed) or len(self.ids))

    def apply(self, index: VectorIndex) -> None:
        index.remove(self.removed)
        if self.vectors is not None and len(self.ids):
            index.add(self.vectors, self.ids, self.case_ids, self.class_names)


def base_header(path: Path) -> tuple[int, int]:
    """(the last delta folded into a base file, its epoch), without reading its vectors; (0, 0) for a file
    written before deltas existed. The epoch changes when the index is rebuilt, not when it is compacted."""
    with np.load(path, allow_pickle=False) as stored:
        return (int(stored["seq"][0]) if "seq" in stored.files else 0,
                int(stored["epoch"][0]) if "epoch" in stored.files else 0)


def load_base(folder: Path, kinds: tuple[str, ...], *, vectors: bool = True) -> tuple[dict[str, VectorIndex], int, int]:
    """The base's indexes (of their ids only unless `vectors`), its last delta and its epoch."""
    path = folder / INDEX_FILE
    return load_indexes(str(path), kinds, vectors=vectors), *base_header(path)


def save_base(folder: Path, indexes: dict[str, VectorIndex], seq: int, epoch: int) -> None:
    """Write the base atomically with every delta up to `seq` folded in, then delete those deltas."""
    _write_atomically(folder / INDEX_FILE, lambda handle: save_indexes(handle, indexes, seq=seq, epoch=epoch))
    for number, path in deltas(folder):
        if number <= seq:
            path.unlink(missing_ok=True)


def deltas(folder: Path, after: int = 0) -> list[tuple[int, Path]]:
    """The delta files with a sequence number above `after`, in order."""
    found = []
    for name in os.listdir(folder) if folder.is_dir() else ():
        match = DELTA.fullmatch(name)
        if match and int(match.group(1)) > after:
            found.append((int(match.group(1)), folder / name))
    return sorted(found)


def write_delta(folder: Path, seq: int, changes: dict[str, Change]) -> Path:
    arrays: dict[str, NDArray[np.generic]] = {}
    for kind, change in changes.items():
        arrays[f"{kind}.removed"] = np.asarray(change.removed, np.int64)
        arrays[f"{kind}.ids"] = np.asarray(change.ids, np.int64)
        arrays[f"{kind}.case_ids"] = np.asarray(change.case_ids, np.int64)
        arrays[f"{kind}.class_names"] = np.array(change.class_names, dtype=np.str_)
        if change.vectors is not None:
            arrays[f"{kind}.vectors"] = np.asarray(change.vectors, np.float32)
    path = folder / f"delta-{seq:012d}.npz"
    _write_atomically(path, lambda handle: np.savez(handle, **arrays))  # type: ignore[arg-type]
    return path


def read_delta(path: Path, kinds: tuple[str, ...]) -> dict[str, Change]:
    with np.load(path, allow_pickle=False) as stored:
        return {kind: Change(
            removed=stored[f"{kind}.removed"], ids=stored[f"{kind}.ids"], case_ids=stored[f"{kind}.case_ids"],
            class_names=[str(name) for name in stored[f"{kind}.class_names"].tolist()],
            vectors=stored[f"{kind}.vectors"] if f"{kind}.vectors" in stored.files else None,
        ) for kind in kinds if f"{kind}.removed" in stored.files}


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        with open(temporary, "wb", opener=private_opener) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
