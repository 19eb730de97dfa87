"""The similar-case index of one embedding model, kept beside the bank and checked against it.

`HOME/similar/<embedding model>/` holds three vector indexes made by one detector, as a base file
and the delta files of the changes since (`index_files`):
- `instances`: every label (imported, confirmed or corrected annotation) of the pack's classes;
- `rejected`: findings an inspector rejected, kept apart as known false alarms;
- `photos`: one vector per case for whole-photo search.
The folder name says which model made the vectors, so a new model (or pack version) gets a new
index beside the old one and never a mix of both. Every file is written atomically; the
bank stays the source of truth: `verify` compares the two and `sync` repairs the index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
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
from hazardvision.similar.index_files import (
    INDEX_FILE,
    Change,
    base_header,
    deltas,
    load_base,
    read_delta,
    save_base,
    write_delta,
)
from hazardvision.similar.thumbnails import thumbnail_path, write_thumbnail
from hazardvision.similar.vector_index import VectorIndex

MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
KINDS = ("instances", "rejected", "photos")
BATCH = 8
"""Photos embedded per forward pass while indexing."""
COMPACT_AFTER = 64
"""Delta files after which a change rewrites the base instead (readers apply each delta on load)."""
CASES_PER_QUERY = 5_000
"""Case ids read from the bank per query when only some cases are synced (a statement's parameters are bounded)."""

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
    """The vectors of one pack's detector over the bank's cases.

    `lock` guards the in-memory indexes: a search holds it while it reads them, and a refresh or an update
    holds it while it changes them (a FAISS index must not be added to during a search).

    `vectors=False` reads which id is of which case and class, not the vectors: enough to append a change
    (`update`), and 100,000 vectors are not read by a command that adds a few cases; such an index cannot be
    searched, and reads its vectors only when a change must rewrite the base (a compaction).
    `on_replaced`, when given, is called instead of reading the files again when `refresh` (a search) finds
    the base replaced by another process (a rebuild): the caller runs `catch_up` off the search's thread,
    and searches use this index as it is until then.
    """

    def __init__(self, home: Path, pack: ModelPack, *, vectors: bool = True,
                 on_replaced: Callable[[CaseIndex], object] | None = None) -> None:
        self.pack = pack
        self.vectors = vectors
        self.on_replaced = on_replaced
        self.model = EmbeddingModel.of(pack)
        self.folder = Home(home).similar_index(self.model.key)
        self.home = home
        self.lock = threading.RLock()
        self.indexes: dict[str, VectorIndex] = {}
        self.damage: str | None = None
        self.signature: tuple[int, int, int] | None = None
        self.seq = 0
        """The last delta file applied (see `index_files`)."""
        self.epoch = 0
        """Which build of the index this is: a rebuild changes it, a compaction does not."""
        self._folder_signature: tuple[int, int, int] | None = None
        self.reload()

    def reload(self) -> None:
        """Read the base file and its deltas again (another process compacted or rebuilt the index).

        An unreadable file leaves the index empty and `damage` set: searches find nothing,
        `verify` reports it and only a rebuild replaces it.
        """
        for _attempt in range(3):
            folder_signature = _signature(self.folder)
            signature = _signature(self.folder / INDEX_FILE)
            indexes: dict[str, VectorIndex] = {}
            damage, seq, epoch = None, 0, 0
            if signature is not None:
                try:
                    indexes, seq, epoch = load_base(self.folder, KINDS, vectors=self.vectors)
                    seq = _apply_deltas(self.folder, indexes, seq)
                except FileNotFoundError:
                    continue  # a compaction folded the deltas into a new base meanwhile: read that
                except (OSError, ValueError, KeyError) as error:
                    damage = (f"{self.model.key}: the index file cannot be read ({error}); "
                              "run `hazardvision bank reindex --rebuild`")
                    indexes = {}
            break
        # Swapped in whole, so that a search sees the old or the new index.
        with self.lock:
            self.indexes, self.damage, self.signature, self.seq = indexes, damage, signature, seq
            self.epoch, self._folder_signature = epoch, folder_signature

    def refresh(self) -> None:
        """Catch up with what other processes wrote: apply their new delta files, or read everything again
        when the base was replaced (with `on_replaced`: have the caller do that, see the class). Costs two
        `stat` calls when nothing changed."""
        self._catch_up(defer=self.on_replaced is not None)

    def catch_up(self) -> None:
        """As `refresh`, reading a replaced base on this thread (what `on_replaced`'s caller runs)."""
        self._catch_up(defer=False)

    def _catch_up(self, *, defer: bool) -> None:
        signature = _signature(self.folder / INDEX_FILE)
        if signature != self.signature:
            if not self._compacted(signature):
                self._replaced(defer)
                return
            self.signature = signature
        folder_signature = _signature(self.folder)
        if folder_signature == self._folder_signature or not self.indexes:
            return
        with self.lock:
            try:
                self.seq = _apply_deltas(self.folder, self.indexes, self.seq)
            except FileNotFoundError:  # a compaction folded them into a new base meanwhile
                self._replaced(defer)
                return
            except (OSError, ValueError, KeyError) as error:
                self.indexes, self.damage = {}, (f"{self.model.key}: a delta file cannot be read ({error}); "
                                                 "run `hazardvision bank reindex --rebuild`")
            self._folder_signature = folder_signature

    def _replaced(self, defer: bool) -> None:
        if defer and self.on_replaced is not None:
            self.on_replaced(self)  # applying later deltas to this index is left to the reload too
        else:
            self.reload()

    def _compacted(self, signature: tuple[int, int, int] | None) -> bool:
        """Whether the new base only folds in deltas this index has applied already (another process compacted
        it): then reading its 100,000 vectors again would change nothing."""
        if signature is None or not self.indexes:
            return False
        try:
            seq, epoch = base_header(self.folder / INDEX_FILE)
        except (OSError, ValueError, KeyError):
            return False
        return epoch != 0 and epoch == self.epoch and seq <= self.seq  # 0: a file of an older version

    @property
    def exists(self) -> bool:
        return bool(self.indexes)

    def __getitem__(self, kind: str) -> VectorIndex:
        if not self.indexes:
            raise IndexError_(f"no similar-case index for {self.model.pack} {self.model.version} at {self.folder}; "
                              "run `hazardvision bank reindex`")
        return self.indexes[kind]

    def expected(self, bank: SampleBank, case_ids: Collection[int] | None = None) -> dict[str, dict[int, Entry]]:
        """What each index should hold, read from the bank (only for `case_ids` when given)."""
        classes = list(self.pack.card.classes)
        wanted: dict[str, dict[int, Entry]] = {kind: {} for kind in KINDS}
        records = SimilarCaseRecords(bank.database)
        chunks: Sequence[list[int] | None] = [None]  # every case
        if case_ids is not None:
            chunks = _chunks(sorted(case_ids), CASES_PER_QUERY)
        for chunk in chunks:
            contents = records.contents(classes=classes, case_ids=chunk)
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

    def sync(self, bank: SampleBank, *, rebuild: bool = False, progress: Progress | None = None,
             compact: bool = False) -> SyncReport:
        """Make the index hold exactly what the bank says: embed what is missing, drop what is gone.

        The change is appended as one delta file; `compact` (or `COMPACT_AFTER` deltas) rewrites the base
        instead. One process at a time updates an index (an flock beside it); it starts from the files as
        the previous writer left them.
        """
        with self._writing():
            if self.damage and not rebuild:
                raise IndexError_(self.damage)
            return self._sync(bank, rebuild=rebuild, progress=progress, compact=compact)

    def update(self, bank: SampleBank, case_ids: Collection[int], progress: Progress | None = None) -> SyncReport:
        """Bring only these cases' vectors in step with the bank (a review, an import, a deletion): reads
        their rows, not the whole bank's, and appends one small delta file."""
        with self._writing():
            if self.damage or not self.exists:
                raise IndexError_(self.damage or f"{self.model.key}: no index; run `hazardvision bank reindex`")
            return self._sync(bank, rebuild=False, progress=progress, compact=False, case_ids=set(case_ids))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        private_folder(self.folder)
        with open(self.folder / LOCK_FILE, "a+b", opener=private_opener) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._catch_up(defer=False)  # a writer starts from the files as they are
            yield

    def _sync(self, bank: SampleBank, *, rebuild: bool, progress: Progress | None, compact: bool,
              case_ids: set[int] | None = None) -> SyncReport:
        self._read_vectors_to_compact(compact=compact, rebuild=rebuild)
        fresh = rebuild or not self.exists
        wanted = self.expected(bank, case_ids)
        held = {} if fresh else self.indexes
        added: dict[str, set[int]] = {}
        removed: dict[str, set[int]] = {}
        for kind in KINDS:
            missing, extra, changed = _differences(wanted[kind], held.get(kind), among=case_ids)
            added[kind], removed[kind] = missing | changed, extra | changed
        cases = sorted({wanted[kind][i].case_id for kind in KINDS for i in added[kind]})
        vectors = self._embed(bank, cases, added, progress)
        changes = {}
        for kind in KINDS:
            ids = sorted(added[kind])
            changes[kind] = Change(
                removed=np.fromiter(removed[kind], np.int64), ids=np.array(ids, np.int64),
                vectors=np.stack([vectors[kind][i] for i in ids]) if ids else None,
                case_ids=np.array([wanted[kind][i].case_id for i in ids], np.int64),
                class_names=[wanted[kind][i].class_name for i in ids])
        report = SyncReport({k: len(v) for k, v in added.items()}, {k: len(v) for k, v in removed.items()}, len(cases))
        try:
            if fresh:
                dim = self.pack.embedding_dim
                built = {kind: VectorIndex(photo_dim(dim) if kind == "photos" else dim) for kind in KINDS}
                for kind in KINDS:
                    changes[kind].apply(built[kind])
                epoch = time.time_ns()
                save_base(self.folder, built, self.seq, epoch)
                with self.lock:
                    self.indexes, self.damage, self.epoch, self.vectors = built, None, epoch, True
            elif any(changes.values()):
                if compact or len(deltas(self.folder)) >= COMPACT_AFTER:
                    with self.lock:
                        for kind in KINDS:
                            changes[kind].apply(self.indexes[kind])
                    save_base(self.folder, self.indexes, self.seq, self.epoch)
                else:
                    with self.lock:  # else a search's refresh could apply the new file first, and then this again
                        write_delta(self.folder, self.seq + 1, changes)
                        for kind in KINDS:
                            changes[kind].apply(self.indexes[kind])
                        self.seq += 1
                        self._folder_signature = _signature(self.folder)
            elif compact and deltas(self.folder):
                save_base(self.folder, self.indexes, self.seq, self.epoch)
            else:
                return report
            self._write_manifest()
        except OSError as error:
            raise BankError(f"cannot write the similar-case index {self.folder}: {error.strerror}") from error
        self.signature = _signature(self.folder / INDEX_FILE)
        self._folder_signature = _signature(self.folder)
        return report

    def _read_vectors_to_compact(self, *, compact: bool, rebuild: bool) -> None:
        """An index of ids only reads every vector when this change rewrites the base (a compaction)."""
        if self.exists and not self.vectors and not rebuild and (compact or len(deltas(self.folder)) >= COMPACT_AFTER):
            self.vectors = True
            self.reload()

    def _write_manifest(self) -> None:
        approximate = {kind: index.approximate for kind, index in self.indexes.items()}
        if not all(index.holds_vectors for index in self.indexes.values()):  # the base's kind did not change
            with contextlib.suppress(OSError, ValueError, KeyError):
                approximate = json.loads((self.folder / MANIFEST_FILE).read_text())["approximate"]
        manifest = {
            "embedding_model": self.model.__dict__ | {"key": self.model.key},
            "counts": {kind: len(index) for kind, index in self.indexes.items()},
            "approximate": approximate,
            "seq": self.seq,
        }
        write_private_file(self.folder / f".{MANIFEST_FILE}", json.dumps(manifest, indent=2).encode())
        os.replace(self.folder / f".{MANIFEST_FILE}", self.folder / MANIFEST_FILE)

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
    wanted: dict[int, Entry], held: VectorIndex | None, among: set[int] | None = None
) -> tuple[set[int], set[int], set[int]]:
    """Ids the bank has and the index lacks, ids the index has and the bank lacks, and ids whose case
    or class changed in the bank since they were indexed; only ids of the cases `among` when given."""
    if held is None:
        return set(wanted), set(), set()
    have = held.ids() if among is None else set(held.ids_where(case_ids=among).tolist())
    changed = {i for i in set(wanted) & have
               if (held.case_of[i], held.class_of[i]) != (wanted[i].case_id, wanted[i].class_name)}
    return set(wanted) - have, have - set(wanted), changed


def _apply_deltas(folder: Path, indexes: dict[str, VectorIndex], after: int) -> int:
    """Apply the delta files after `after` to `indexes`, in order; the last one's number."""
    for number, path in deltas(folder, after):
        for kind, change in read_delta(path, KINDS).items():
            change.apply(indexes[kind])
        after = number
    return after


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when the index file is replaced: inode, size and modification time."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
