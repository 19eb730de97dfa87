"""What the service serves with: the active packs, their scanner and their similar-case search.

`ServingState` is immutable; `ModelHost.current` is replaced by reference, never changed in
place, so that a request keeps the state it started with while a model swap or an index
refresh builds the next one beside it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.scoring_cases import test_split_photos
from hazardvision.catalogue import Catalogue
from hazardvision.data.generations import Generations, Kind
from hazardvision.detections import Detections
from hazardvision.errors import HazardVisionError, InvalidModel, ModelsLoading
from hazardvision.home import Home
from hazardvision.images import DecodedImage
from hazardvision.packs.card import CARD_FILE, Precision
from hazardvision.packs.model_pack import ModelPack, detect_with_packs, load_pack
from hazardvision.packs.promotion import DEFAULT_TOLERANCE, Comparison, Record, promote
from hazardvision.packs.registry import PackRegistry
from hazardvision.packs.tiling import TilingMode
from hazardvision.scan import Scanner
from hazardvision.service.thread_priority import at_lower_priority
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.maintenance import sync_indexes, update_indexes
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.search import SimilarCaseSearch

log = logging.getLogger("hazardvision.service")

CACHED_PACKS = 8
"""Loaded pack versions kept in memory, so that switching back and forth loads nothing."""


def thumbnail_url(case_id: int, annotation_id: int) -> str:
    """Where the service serves a similar case's thumbnail."""
    return f"/v1/cases/{case_id}/thumbnail?annotation={annotation_id}"


@dataclass(frozen=True)
class ServingState:
    """The packs in use and what is built on them; never changed once made."""

    packs: tuple[ModelPack, ...]
    scanner: Scanner
    search: SimilarCaseSearch | None
    generation: int
    down: dict[str, str] = field(default_factory=dict)
    """Pack -> why its active version is not served (it failed to load); the other packs serve."""
    _scanners: dict[tuple[tuple[str, ...] | None, bool], Scanner] = field(default_factory=dict, repr=False,
                                                                           compare=False)

    @property
    def versions(self) -> dict[str, str]:
        return {pack.name: pack.version for pack in self.packs}

    def scanner_for(self, packs: tuple[str, ...] | None = None, *, similar: bool = True) -> Scanner:
        """The scanner of some of the packs (None: all), searching similar cases or not (faster)."""
        if packs is None and (similar or self.search is None):
            return self.scanner
        key = (packs, similar and self.search is not None)
        scanner = self._scanners.get(key)
        if scanner is None:  # two threads may both build one: harmless, they are alike
            chosen = [pack for pack in self.packs if packs is None or pack.name in packs]
            scanner = Scanner(chosen, self.scanner.catalogue, similar=self.search if key[1] else None,
                              similar_query=self.scanner.similar_query)
            self._scanners[key] = scanner
        return scanner

    def detect(self, images: Sequence[DecodedImage], weak: float, *, tiling: TilingMode | None = None
               ) -> list[Detections]:
        """Detections of every pack, merged per frame (no similar-case search), down to `weak` confidence
        for the tracker, each tagged with its class's operating threshold."""
        return detect_with_packs(self.packs, [image.pixels for image in images], weak=weak, tiling=tiling)


@dataclass
class PackCache:
    """Loaded pack versions by folder, precision and file times (a rewritten folder loads afresh)."""

    features: bool = True
    """Whether packs also run with feature maps (for similar cases); their sessions are opened on load too."""
    require_hashes: bool | None = None
    """Refuse cards without model file hashes (None: $HAZARDVISION_REQUIRE_MODEL_HASHES)."""
    photo_nice: int = 0
    """How much lower the threads of the photo scans' sessions run than the frames' (see `thread_priority`)."""
    threads: int | None = None
    """onnxruntime's threads per model run (None: its default, every core)."""
    size: int = CACHED_PACKS
    _packs: OrderedDict[tuple[str, str, float, float], ModelPack] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, folder: Path, precision: Precision | None) -> ModelPack:
        """The pack version at `precision`, or at its card's default precision when None."""
        card = folder / CARD_FILE
        pack = load_pack(folder, precision, require_hashes=self.require_hashes,  # the file checked every time
                         threads=self.threads)
        key = (str(folder.resolve()), pack.precision.value, card.stat().st_mtime, pack.model_path.stat().st_mtime)
        with self._lock:
            if key in self._packs:
                self._packs.move_to_end(key)
                return self._packs[key]
        _warm(pack, features=self.features, photo_nice=self.photo_nice)
        with self._lock:
            self._packs[key] = pack
            while len(self._packs) > self.size:
                self._packs.popitem(last=False)
        return pack


def _warm(pack: ModelPack, *, features: bool, photo_nice: int = 0) -> None:
    """Open the ONNX sessions now, so that the first request on a new state does not pay for it: the photo
    scans' (with feature maps) on a thread `photo_nice` lower, whose priority its worker threads inherit."""
    blank = np.zeros((64, 64, 3), np.uint8)
    pack.detect([blank])
    if features:
        at_lower_priority(photo_nice, lambda: pack.detect_with_features([blank]))


class ModelHost:
    """Holds the current `ServingState` and replaces it: on activation, and when the bank's index changes.

    One replacement at a time (a lock, held only for the swap itself, not while an activation's gate scores);
    readers never wait, they take `current` as it is.
    """

    def __init__(
        self, registry: PackRegistry, catalogue: Catalogue, bank: SampleBank, *, precision: Precision | None,
        query: SimilarQuery | None, datasets: Path | None = None, photo_nice: int = 0, model_threads: int | None = None,
    ) -> None:
        """`query`: which similar cases each finding gets; None turns similar cases off. `datasets`: the root the
        promotion gate scores on (else the bank's test-split cases). `photo_nice`: see `thread_priority`.
        `model_threads`: onnxruntime's threads per model run (None: its default, every core)."""
        self.registry = registry
        self.catalogue = catalogue
        self.bank = bank
        self.precision = precision
        self.query = query
        self.datasets = datasets
        self.cache = PackCache(features=query is not None, require_hashes=registry.require_hashes,
                               photo_nice=photo_nice, threads=model_threads)
        self._lock = threading.Lock()
        self._activation = threading.Lock()
        """One activation at a time; held while the gate scores, without `_lock`, which only each swap holds."""
        self._state: ServingState | None = None
        self._generation = 0
        self.load_error: str | None = None
        self.down: dict[str, str] = {}
        """Pack -> why it does not serve (failed to load), also while no pack serves at all."""
        self.on_index_replaced: Callable[[CaseIndex], object] | None = None
        """Given, it reads again (off the scan's thread) an index whose base another process replaced; a scan
        that notices keeps searching the index it has until then (see `CaseIndex`). None: the scan reads it."""

    @property
    def current(self) -> ServingState:
        state = self._state
        if state is None:
            raise ModelsLoading(self.load_error or "the service is still loading its models; retry in a few seconds")
        return state

    @property
    def ready(self) -> bool:
        return self._state is not None

    @property
    def versions(self) -> dict[str, str]:
        """Pack -> version served now (empty while nothing serves)."""
        state = self._state
        return state.versions if state is not None else {}

    def load(self) -> ServingState:
        """Load the active version of every pack and serve with those that load (the others are `down`)."""
        with self._lock:
            try:
                return self._install(*self._active_packs())
            except Exception as error:
                self.load_error = f"the models could not be loaded: {type(error).__name__}: {error}"
                raise

    def refresh_search(self) -> ServingState:
        """Bring the current packs' existing similar-case indexes in step with the bank, and serve with them."""
        return self.update_search(None)

    def update_search(self, case_ids: set[int] | None) -> ServingState:
        """Bring the current packs' existing similar-case indexes in step with the bank (only the vectors of
        `case_ids` when given), in place: searches see each change as soon as it is appended."""
        with self._lock:
            state = self.current
            if state.search is None:
                if not sync_indexes(self.bank, state.packs, only_existing=True):
                    return state  # no index to update or to start reading
                return self._install(state.packs, state.down)
            update_indexes(self.bank, state.search.indexes.values(), case_ids)
            return state

    def activate(self, pack: str, version: str, *, force: bool, tolerance: float = DEFAULT_TOLERANCE,
                 record: Record | None = None) -> tuple[ServingState, list[Comparison]]:
        """Make `version` the active version of `pack` through the registry's gate, then serve with it.

        The new version is loaded (its file checked against its card's sha256), and its similar-case index built
        when the bank has indexes, before the ACTIVE file changes, so a version that cannot serve is never made
        active. A pack that failed to load (or every pack) can be given a good version this way.
        """
        folder = self.registry.version(pack, version).folder  # UnknownModel, naming the versions there are
        with self._activation:  # the gate scores for seconds to minutes: index updates and following go on
            if self._state is None and not self.down:
                raise ModelsLoading("the service is still loading its models; retry in a few seconds")
            candidate = self.cache.get(folder, self.precision)
            if self._has_indexes():
                sync_indexes(self.bank, [candidate])
            comparisons = promote(self.registry, pack, version, force=force, tolerance=tolerance,
                                  datasets=self.datasets, test_cases=lambda: test_split_photos(self.bank),
                                  record=record)  # writes the home's ACTIVE, then `record` (or neither)
            Generations(self.bank.database).bump(Kind.MODELS)  # the other processes of this database follow
            with self._lock:  # the state as it is now (follow_models may have installed the new version already)
                current = self._state
                packs = [candidate if p.name == pack else p for p in (current.packs if current is not None else ())]
                if pack not in {p.name for p in packs}:
                    packs.append(candidate)
                down = {name: why for name, why in (current.down if current is not None else self.down).items()
                        if name != pack}
                return self._install(packs, down), comparisons

    def follow_models(self) -> ServingState | None:
        """Serve the registry's active versions if another process changed them; the new state, or None."""
        with self._lock:
            state = self.current
            wanted = self._serving_folders()
            if not wanted or ([folder for _, folder in wanted] == [pack.folder for pack in state.packs]
                              and not state.down):
                return None
            return self._install(*self._active_packs())

    def follow_cases(self) -> ServingState:
        """Read the other processes' changes to the similar-case index files (a rebuilt one is read on the
        index's background thread, see `on_index_replaced`), starting to search if they appeared since."""
        with self._lock:
            state = self.current
            if state.search is not None:
                state.search.indexes  # noqa: B018  (reads the other processes' deltas, or a rebuilt index)
                return state
            return self._install(state.packs, state.down)

    def _has_indexes(self) -> bool:
        state = self._state
        return state is not None and any(CaseIndex(self.bank.home, p, vectors=False).exists for p in state.packs)

    def _serving_folders(self) -> list[tuple[str, Path]]:
        """(pack, folder of its active version) of every pack that serves; a pack whose ACTIVE is broken is left
        out (its error is the load's)."""
        folders = []
        for pack in self.registry.packs():
            try:
                if self.registry.serves(pack):
                    folders.append((pack, self.registry.active(pack).folder))
            except HazardVisionError:
                folders.append((pack, self.registry.bundled / pack))  # loading it names the problem
        return folders

    def _active_packs(self) -> tuple[list[ModelPack], dict[str, str]]:
        """The active version of every serving pack that loads, and why each of the others does not."""
        packs, down = self.registry.loadable_packs(load=lambda version: self.cache.get(version.folder, self.precision))
        for name, why in down.items():
            log.error("pack %s does not serve: %s", name, why)
        self.down = down
        if not packs:
            raise InvalidModel("no model pack could be loaded: " + "; ".join(f"{k}: {v}" for k, v in down.items())
                               + "; activate a good version of one (POST /v1/models/{pack}/activate)")
        return packs, down

    def _install(self, packs: Sequence[ModelPack], down: dict[str, str] | None = None) -> ServingState:
        search = None
        if self.query is not None and Home(self.bank.home).similar.is_dir():
            found = SimilarCaseSearch(self.bank, self.catalogue, {
                pack.name: CaseIndex(self.bank.home, pack, on_replaced=self.on_index_replaced) for pack in packs},
                thumbnail_url)
            search = found if found.indexes else None
        scanner = Scanner(packs, self.catalogue, similar=search, similar_query=self.query)
        self._generation += 1
        state = ServingState(tuple(packs), scanner, search, self._generation, dict(down or {}))
        self._state = state  # the swap: one reference assignment
        self.load_error = None
        self.down = state.down
        log.info("serving %s (generation %d, similar cases %s)",
                 ", ".join(f"{k} {v}" for k, v in state.versions.items()), state.generation,
                 "on" if search else "off")
        return state
