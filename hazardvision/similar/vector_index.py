"""A FAISS inner-product index of L2-normalised vectors, each with an id, a case and a class.

Exact search (a flat index) while the index is small; an inverted-file index (IVF, flat lists)
from `APPROXIMATE_FROM` vectors on, where exact search stops meeting the latency target
(`benchmarks/similar_speed.py` measures both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, BinaryIO

import faiss as _faiss
import numpy as np
from numpy.typing import NDArray

from hazardvision.packs.embedding import Vectors

faiss: Any = _faiss  # its bundled stubs miss DirectMap and the keyword arguments of SearchParameters

APPROXIMATE_FROM = 10_000
"""Vectors from which a built index is approximate (IVF). Exact search reads every vector for each
query, so it is bound by memory bandwidth: top-10 over 640-d vectors took 1.3 ms (p50; p99 3.1 ms)
at 10,000, 28 ms at 100,000 and 218 ms at 1,000,000 on this project's 2-core machine, against
0.3, 1.1 and 10 ms for the IVF index with recall@10 0.98, 1.00 and 1.00
(`benchmarks/similar_speed.py`). Below 10,000 vectors exact search needs no training and stays
under the 5 ms budget."""
TRAINING_PER_LIST = 64
"""Training vectors per inverted list for the IVF's k-means (FAISS wants at least 39)."""
PROBE_FRACTION = 1 / 32
"""Share of the inverted lists searched per query (at least MIN_PROBES): recall@10 against exact
search was 0.978 at 10,000, 1.000 at 100,000 and 1,000,000 vectors."""
MIN_PROBES = 8
"""Lists searched at least, so that a small IVF index (few, large lists) keeps its recall."""

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: int
    case_id: int
    class_name: str
    score: float


class VectorIndex:
    """Vectors under int64 ids, each tagged with its case id and class name, searchable by cosine.

    `vectors=False` makes an index of the ids only (which id is of which case and class): what a process
    that only appends a change needs to know, without reading every vector (`CaseIndex(vectors=False)`).
    It cannot be searched or saved.
    """

    def __init__(self, dim: int, index: Any = None, *, vectors: bool = True) -> None:
        self.dim = dim
        self.index: Any = index if index is not None or not vectors else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.case_of: dict[int, int] = {}
        self.class_of: dict[int, str] = {}
        self._ids_of_class: dict[str, IntArray] | None = None
        self._class_vectors: dict[str, tuple[Vectors, IntArray]] | None = None
        """Ids per class, made on the first class-filtered search after a change (a scan filters each finding)."""

    @classmethod
    def build(
        cls, vectors: Vectors, ids: IntArray, case_ids: IntArray, class_names: list[str],
        *, approximate: bool | None = None,
    ) -> VectorIndex:
        """A new index of `vectors`; approximate from `APPROXIMATE_FROM` vectors unless told."""
        dim = vectors.shape[1]
        if approximate is None:
            approximate = len(vectors) >= APPROXIMATE_FROM
        built = cls(dim, _ivf(vectors) if approximate else None)
        built.add(vectors, ids, case_ids, class_names)
        return built

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def holds_vectors(self) -> bool:
        return self.index is not None

    def __len__(self) -> int:
        return int(self.index.ntotal) if self.index is not None else len(self.case_of)

    def ids(self) -> set[int]:
        return set(self.case_of)

    def add(self, vectors: Vectors, ids: IntArray, case_ids: IntArray, class_names: list[str]) -> None:
        if len(vectors) == 0:
            return
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors of dimension {vectors.shape[1]} added to an index of dimension {self.dim}")
        self.remove(ids)  # a re-added id replaces its old vector
        self._ids_of_class = self._class_vectors = None
        if self.index is not None:
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))
        for vector_id, case_id, class_name in zip(ids.tolist(), case_ids.tolist(), class_names, strict=True):
            self.case_of[vector_id] = case_id
            self.class_of[vector_id] = class_name

    def remove(self, ids: IntArray) -> None:
        present = [i for i in np.asarray(ids, np.int64).tolist() if i in self.case_of]
        if not present:
            return
        # An IVF's hash-table id map removes only through an IDSelectorArray.
        selected = np.asarray(present, np.int64)
        if self.index is not None:
            self.index.remove_ids(faiss.IDSelectorArray(len(selected), faiss.swig_ptr(selected)))
        for vector_id in present:
            del self.case_of[vector_id]
            del self.class_of[vector_id]
        self._ids_of_class = self._class_vectors = None

    def search(
        self, queries: Vectors, k: int, allowed: IntArray | None = None, *, class_name: str | None = None
    ) -> list[list[Hit]]:
        """The `k` nearest vectors to each query, best first; only ids in `allowed` and of `class_name` when given."""
        self._needs_vectors()
        if class_name is not None and allowed is None and not self.approximate:
            return self._search_class(queries, k, class_name)
        if class_name is not None:
            same = self.ids_where(class_name=class_name)
            allowed = same if allowed is None else np.intersect1d(allowed, same)
        if len(self) == 0 or len(queries) == 0 or (allowed is not None and len(allowed) == 0):
            return [[] for _ in range(len(queries))]
        selector = faiss.IDSelectorBatch(np.asarray(allowed, np.int64)) if allowed is not None else None
        if self.approximate:
            params: Any = faiss.SearchParametersIVF(sel=selector, nprobe=self._nprobe())
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, found = self.index.search(np.ascontiguousarray(queries, np.float32), k, params=params)
        return [
            [Hit(int(i), self.case_of[int(i)], self.class_of[int(i)], float(s))
             for s, i in zip(row_scores, row_ids, strict=True) if i >= 0]
            for row_scores, row_ids in zip(scores, found, strict=True)
        ]

    def _search_class(self, queries: Vectors, k: int, class_name: str) -> list[list[Hit]]:
        """Exact search among one class's vectors with numpy: a scan filters every finding by its class,
        and FAISS's id selector made that several times slower than the search itself."""
        if self._class_vectors is None:
            ids = np.fromiter(self.case_of, np.int64, count=len(self.case_of))
            matrix = np.stack([self.vector(int(i)) for i in ids]) if len(ids) else np.empty((0, self.dim), np.float32)
            names = np.array([self.class_of[int(i)] for i in ids])
            self._class_vectors = {name: (np.ascontiguousarray(matrix[names == name]), ids[names == name])
                                   for name in set(names.tolist())}
        matrix, ids = self._class_vectors.get(class_name, (np.empty((0, self.dim), np.float32), np.empty(0, np.int64)))
        results = []
        for scores in np.asarray(queries, np.float32) @ matrix.T:
            best = np.argsort(-scores, kind="stable")[:k] if len(scores) <= 4 * k else \
                (top := np.argpartition(-scores, k)[:k])[np.argsort(-scores[top], kind="stable")]
            results.append([Hit(int(ids[j]), self.case_of[int(ids[j])], class_name, float(scores[j])) for j in best])
        return results

    def vector(self, vector_id: int) -> Vectors:
        """The stored vector of an id."""
        self._needs_vectors()
        return np.asarray(self.index.reconstruct(vector_id), np.float32)

    def ids_where(self, *, class_name: str | None = None, case_ids: set[int] | None = None) -> IntArray:
        """Ids whose class is `class_name` and whose case is in `case_ids` (each when given)."""
        if case_ids is None and class_name is not None:
            if self._ids_of_class is None:
                grouped: dict[str, list[int]] = {}
                for i, name in self.class_of.items():
                    grouped.setdefault(name, []).append(i)
                self._ids_of_class = {name: np.array(ids, np.int64) for name, ids in grouped.items()}
            return self._ids_of_class.get(class_name, np.empty(0, np.int64))
        return np.fromiter(
            (i for i, c in self.case_of.items()
             if (class_name is None or self.class_of[i] == class_name) and (case_ids is None or c in case_ids)),
            dtype=np.int64,
        )

    def to_bytes(self) -> dict[str, NDArray[np.generic]]:
        """Arrays that `from_arrays` restores (stored together in one file by the caller)."""
        self._needs_vectors()
        ids = np.fromiter(self.case_of, dtype=np.int64, count=len(self.case_of))
        return {
            "index": faiss.serialize_index(self.index),
            "ids": ids,
            "case_ids": np.array([self.case_of[i] for i in ids.tolist()], np.int64),
            "class_names": np.array([self.class_of[i] for i in ids.tolist()], dtype=np.str_),
            "dim": np.array([self.dim]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[np.generic]]) -> VectorIndex:
        """The index `to_bytes` stored; of the ids only when `arrays` lacks "index"."""
        vectors = "index" in arrays
        loaded = cls(int(arrays["dim"][0]), faiss.deserialize_index(arrays["index"]) if vectors else None,
                     vectors=vectors)
        if isinstance(loaded.index, faiss.IndexIVF):
            loaded.index.set_direct_map_type(faiss.DirectMap.Hashtable)
        ids = arrays["ids"].tolist()
        loaded.case_of = dict(zip(ids, arrays["case_ids"].tolist(), strict=True))
        loaded.class_of = dict(zip(ids, [str(c) for c in arrays["class_names"].tolist()], strict=True))
        if vectors and len(loaded.case_of) != loaded.index.ntotal:
            raise ValueError(f"index holds {loaded.index.ntotal} vectors but lists {len(loaded.case_of)} ids")
        return loaded

    def _needs_vectors(self) -> None:
        if self.index is None:
            raise ValueError("this index holds ids only (it was read without its vectors)")

    def _nprobe(self) -> int:
        return min(int(self.index.nlist), max(MIN_PROBES, math.ceil(int(self.index.nlist) * PROBE_FRACTION)))


def _ivf(vectors: Vectors) -> Any:
    """A trained IVF index sized for `vectors`: about sqrt(n) lists."""
    dim = vectors.shape[1]
    nlist = max(1, min(int(math.sqrt(len(vectors))), len(vectors) // 39))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), nlist * TRAINING_PER_LIST), replace=False)]
    index.train(np.ascontiguousarray(sample, np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def save_indexes(path: BinaryIO | str, indexes: dict[str, VectorIndex], *, seq: int = 0, epoch: int = 0) -> None:
    """Write several named indexes into one `.npz` (the caller makes the write atomic); `seq` and `epoch`:
    the last delta file folded in, and which build the file is of (see `index_files`)."""
    arrays: dict[str, NDArray[np.generic]] = {"seq": np.array([seq], np.int64), "epoch": np.array([epoch], np.int64)}
    for name, index in indexes.items():
        arrays.update({f"{name}.{key}": value for key, value in index.to_bytes().items()})
    np.savez(path, **arrays)  # type: ignore[arg-type]


def load_indexes(path: str, names: tuple[str, ...], *, vectors: bool = True) -> dict[str, VectorIndex]:
    """The named indexes of a `save_indexes` file; of their ids only unless `vectors` (each array of an `.npz`
    is read on its own, so the ids of 100,000 vectors are read without their 260 MB)."""
    keys = ("index", "ids", "case_ids", "class_names", "dim") if vectors else ("ids", "case_ids", "class_names", "dim")
    with np.load(path, allow_pickle=False) as stored:
        return {name: VectorIndex.from_arrays({key: stored[f"{name}.{key}"] for key in keys}) for name in names}
