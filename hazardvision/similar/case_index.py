"""The similar-case index of one embedding model, kept beside the bank and checked against it.

`HOME/similar/<embedding model>/index.npz` holds three vector indexes made by one detector:
- `instances`: every label (imported, confirmed or corrected annotation) of the pack's classes;
- `rejected`: findings an inspector rejected, kept apart as known false alarms;
- `photos`: one vector per case for whole-photo search.
The folder name says which model made the vectors, so a new model (or pack version) gets a new
index beside the old one and never a mix of both. Every write replaces the file atomically; the
bank stays the source of truth: `verify` compares the two and `sync` repairs the index.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hazardvision.bank.bank import SampleBank
from hazardvision.data.bank_records import LABELLED_ORIGINS, Origin
from hazardvision.data.similar_cases import SimilarCaseRecords
from hazardvision.errors import BankError, HazardVisionError
from hazardvision.home import Home, private_folder, private_opener, write_private_file
from hazardvision.images import load_image
from hazardvision.packs.embedding import METHOD, photo_dim
from hazardvision.packs.model_pack import ModelPack
from hazardvision.similar.thumbnails import thumbnail_path, write_thumbnail
from hazardvision.similar.vector_index import VectorIndex, load_indexes, save_indexes

INDEX_FILE = "index.npz"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
KINDS = ("instances", "rejected", "photos")
BATCH = 8
"""Photos embedded per forward pass while indexing."""

Progress = Callable[[int, int], None]
"""Called with (photos embedded, photos to embed)."""


class IndexError_(HazardVisionError):  # noqa: N801  (IndexError is a builtin)
    """A similar-case index is missing, unreadable or made by another model."""


@dataclass(frozen=True)
class EmbeddingModel:
    """What made an index's vectors: a pack version's ONNX file and the pooling recipe."""

    pack: str
    version: str
    precision: str
    sha256: str
    method: str = METHOD

    @property
    def key(self) -> str:
        return f"{self.pack}-{self.version}-{self.precision}-{self.sha256[:12]}-{self.method}"

    @classmethod
    def of(cls, pack: ModelPack) -> EmbeddingModel:
        return cls(pack.name, pack.version, pack.precision.value, pack.sha256)


@dataclass(frozen=True)
class Entry:
    """What the bank says one vector should be: its case and class."""

    case_id: int
    class_name: str


@dataclass(frozen=True)
class SyncReport:
    added: dict[str, int]
    removed: dict[str, int]
    photos_embedded: int


class CaseIndex:
    """The vectors of one pack's detector over the bank's cases."""

    def __init__(self, home: Path, pack: ModelPack) -> None:
        self.pack = pack
        self.model = EmbeddingModel.of(pack)
        self.folder = Home(home).similar_index(self.model.key)
        self.home = home
        self.indexes: dict[str, VectorIndex] = {}
        self.damage: str | None = None
        self.signature: tuple[int, int, int] | None = None
        self.reload()

    def reload(self) -> None:
        """Read the index file again (another process may have updated it).

        An unreadable file leaves the index empty and `damage` set: searches find nothing,
        `verify` reports it and only a rebuild replaces it.
        """
        path = self.folder / INDEX_FILE
        indexes: dict[str, VectorIndex] = {}
        damage = None
        signature = _signature(path)
        if signature is not None:
            try:
                indexes = load_indexes(str(path), KINDS)
            except (OSError, ValueError, KeyError) as error:
                damage = (f"{self.model.key}: the index file cannot be read ({error}); "
                          "run `hazardvision bank reindex --rebuild`")
        # Swapped in whole, so that a search running in another thread sees the old or the new index.
        self.indexes, self.damage, self.signature = indexes, damage, signature

    def refresh(self) -> None:
        """Reload when another process (`bank import`, `bank reindex`) has replaced the index file."""
        if _signature(self.folder / INDEX_FILE) != self.signature:
            self.reload()

    @property
    def exists(self) -> bool:
        return bool(self.indexes)

    def __getitem__(self, kind: str) -> VectorIndex:
        if not self.indexes:
            raise IndexError_(f"no similar-case index for {self.model.pack} {self.model.version} at {self.folder}; "
                              "run `hazardvision bank reindex`")
        return self.indexes[kind]

    def expected(self, bank: SampleBank) -> dict[str, dict[int, Entry]]:
        """What each index should hold, read from the bank."""
        classes = list(self.pack.card.classes)
        wanted: dict[str, dict[int, Entry]] = {kind: {} for kind in KINDS}
        contents = SimilarCaseRecords(bank.database).contents(classes=classes)
        for annotation in contents.annotations:
            entry = Entry(annotation.case_id, annotation.class_name)
            if annotation.origin in LABELLED_ORIGINS:
                wanted["instances"][annotation.id] = entry
            elif annotation.origin == Origin.REJECTED.value:
                wanted["rejected"][annotation.id] = entry
        for case_id in contents.case_ids:
            wanted["photos"][case_id] = Entry(case_id, "")
        return wanted

    def verify(self, bank: SampleBank) -> list[str]:
        """Differences between the bank and this index (empty when they agree)."""
        if self.damage:
            return [self.damage]
        if not self.exists:
            return [f"{self.model.key}: no index; run `hazardvision bank reindex`"]
        problems = []
        for kind, wanted in self.expected(bank).items():
            missing, extra, changed = _differences(wanted, self.indexes[kind])
            for label, ids in (("missing from", missing), ("in the index but not in the bank:", extra),
                               ("changed in the bank since indexing:", changed)):
                if ids:
                    shown = ", ".join(str(i) for i in sorted(ids)[:5]) + (" ..." if len(ids) > 5 else "")
                    what = "case" if kind == "photos" else "annotation"
                    problems.append(f"{self.model.key}: {len(ids)} {kind} {label} the index ({what} ids {shown})"
                                    if label == "missing from" else
                                    f"{self.model.key}: {len(ids)} {kind} {label} {what} ids {shown}")
        return problems

    def sync(self, bank: SampleBank, *, rebuild: bool = False, progress: Progress | None = None) -> SyncReport:
        """Make the index hold exactly what the bank says: embed what is missing, drop what is gone.

        One process at a time updates an index (an flock beside it); it starts from the file as
        the previous writer left it.
        """
        private_folder(self.folder)
        with open(self.folder / LOCK_FILE, "a+b", opener=private_opener) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self.reload()
            if self.damage and not rebuild:
                raise IndexError_(self.damage)
            return self._sync(bank, rebuild=rebuild, progress=progress)

    def _sync(self, bank: SampleBank, *, rebuild: bool, progress: Progress | None) -> SyncReport:
        wanted = self.expected(bank)
        if rebuild or not self.exists:
            self.indexes = {}
        added: dict[str, set[int]] = {}
        removed: dict[str, set[int]] = {}
        for kind in KINDS:
            missing, extra, changed = _differences(wanted[kind], self.indexes.get(kind))
            added[kind], removed[kind] = missing | changed, extra | changed
        cases = sorted({wanted[kind][i].case_id for kind in KINDS for i in added[kind]})
        vectors = self._embed(bank, cases, added, progress)
        if not self.indexes:
            dim = self.pack.embedding_dim
            self.indexes = {kind: VectorIndex(photo_dim(dim) if kind == "photos" else dim) for kind in KINDS}
        for kind in KINDS:
            self.indexes[kind].remove(np.fromiter(removed[kind], np.int64))
            ids = sorted(added[kind])
            if ids:
                self.indexes[kind].add(np.stack([vectors[kind][i] for i in ids]), np.array(ids, np.int64),
                                       np.array([wanted[kind][i].case_id for i in ids], np.int64),
                                       [wanted[kind][i].class_name for i in ids])
        self.save()
        return SyncReport({k: len(v) for k, v in added.items()}, {k: len(v) for k, v in removed.items()}, len(cases))

    def save(self) -> None:
        """Write the index file and its manifest, each atomically."""
        private_folder(self.folder)
        temporary = self.folder / f".{INDEX_FILE}.{os.getpid()}"
        try:
            with open(temporary, "wb", opener=private_opener) as handle:
                save_indexes(handle, self.indexes)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.folder / INDEX_FILE)
            manifest = {
                "embedding_model": self.model.__dict__ | {"key": self.model.key},
                "counts": {kind: len(index) for kind, index in self.indexes.items()},
                "approximate": {kind: index.approximate for kind, index in self.indexes.items()},
            }
            write_private_file(self.folder / f".{MANIFEST_FILE}", json.dumps(manifest, indent=2).encode())
            os.replace(self.folder / f".{MANIFEST_FILE}", self.folder / MANIFEST_FILE)
            self.signature = _signature(self.folder / INDEX_FILE)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise BankError(f"cannot write the similar-case index {self.folder}: {error.strerror}") from error

    def _embed(
        self, bank: SampleBank, cases: list[int], added: dict[str, set[int]], progress: Progress | None
    ) -> dict[str, dict[int, np.ndarray]]:
        """Vectors of the added annotations and photos, one forward pass per photo; writes thumbnails."""
        out: dict[str, dict[int, np.ndarray]] = {kind: {} for kind in KINDS}
        boxed = added["instances"] | added["rejected"]
        records = SimilarCaseRecords(bank.database)
        done = 0
        for chunk in _chunks(cases, BATCH):
            rows, boxes = records.photos(case_ids=chunk)
            photos = [load_image(bank.store.path(row.sha256, row.format)) for row in rows]
            maps = self.pack.feature_maps([photo.pixels for photo in photos])
            for row, photo, features in zip(rows, photos, maps, strict=True):
                if row.case_id in added["photos"]:
                    out["photos"][row.case_id] = features.embed_photo(photo.pixels)[0]
                mine = [b for b in boxes if b.case_id == row.case_id and b.id in boxed]
                if mine:
                    vectors = features.embed_boxes(np.array([b.box for b in mine], np.float64))
                    for box, vector in zip(mine, vectors, strict=True):
                        kind = "instances" if box.id in added["instances"] else "rejected"
                        out[kind][box.id] = vector
                        write_thumbnail(photo.pixels, box.box, thumbnail_path(self.home, box.id))
            done += len(chunk)
            if progress is not None:
                progress(done, len(cases))
        return out


def _differences(
    wanted: dict[int, Entry], held: VectorIndex | None
) -> tuple[set[int], set[int], set[int]]:
    """Ids the bank has and the index lacks, ids the index has and the bank lacks, and ids whose case
    or class changed in the bank since they were indexed."""
    if held is None:
        return set(wanted), set(), set()
    have = held.ids()
    changed = {i for i in set(wanted) & have
               if (held.case_of[i], held.class_of[i]) != (wanted[i].case_id, wanted[i].class_name)}
    return set(wanted) - have, have - set(wanted), changed


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when the index file is replaced: inode, size and modification time."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
