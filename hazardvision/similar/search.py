"""Queries: the past cases that look like a finding, a box or a whole photo."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from hazardvision.bank.bank import SampleBank
from hazardvision.boxes import box_iou
from hazardvision.catalogue import Catalogue
from hazardvision.data.similar_cases import CaseSummary, SimilarCaseRecords
from hazardvision.home import Home
from hazardvision.images import BGRImage
from hazardvision.packs.embedding import FeatureMaps, scene_similarity, scene_views
from hazardvision.packs.model_pack import ModelPack
from hazardvision.results import Box, SimilarCase
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.thumbnails import thumbnail_path
from hazardvision.similar.vector_index import Hit, VectorIndex

# numpy's BLAS threads spin for a while after each small matrix product and took the cores from
# onnxruntime's own thread pool: with them the similar-case step added 74% to a 1280x720 scan,
# with one BLAS thread 10% (benchmarks/similar_speed.py). Serving needs no threaded BLAS.
threadpool_limits(limits=1, user_api="blas")

CANDIDATES = 50
"""Whole-photo candidates taken from each pack before their scores are averaged."""
DEFAULT_QUERY = SimilarQuery()
FALSE_ALARM_CANDIDATES = 10
"""Rejected findings of a finding's class taken, best box match first, before the scene and place checks pick one:
the nearest box vector is often a rejected finding of another photo, the right one close behind."""
OWN_CASE_MARGIN = 16
"""Extra hits asked for when the photo's own case is left out (its own boxes are the nearest)."""

Thumbnail = Callable[[int, int], str]
"""How a similar case points at its thumbnail, given (case id, annotation id): a path or a URL."""


class SimilarCaseSearch:
    """Similar past cases from the bank, through the index of each pack's embedding model."""

    def __init__(
        self, bank: SampleBank, catalogue: Catalogue, indexes: Mapping[str, CaseIndex],
        thumbnail: Thumbnail | None = None,
    ) -> None:
        self.bank = bank
        self.records = SimilarCaseRecords(bank.database)
        self.catalogue = catalogue
        self._indexes = dict(indexes)
        self.thumbnail = thumbnail or (lambda _case_id, annotation_id: str(thumbnail_path(bank.home, annotation_id)))

    @property
    def indexes(self) -> dict[str, CaseIndex]:
        """The packs' indexes that exist, re-read when another process has replaced them (a long-running
        service sees what `bank import` and `bank reindex` wrote)."""
        for index in self._indexes.values():
            index.refresh()
        return {name: index for name, index in self._indexes.items() if index.exists}

    @property
    def packs(self) -> list[ModelPack]:
        return [index.pack for index in self.indexes.values()]

    @classmethod
    def open(cls, bank: SampleBank, packs: Sequence[ModelPack], catalogue: Catalogue,
             thumbnail: Thumbnail | None = None) -> SimilarCaseSearch:
        """Search through the indexes of these pack versions (packs without one find nothing)."""
        return cls(bank, catalogue, {pack.name: CaseIndex(bank.home, pack) for pack in packs}, thumbnail)

    def for_boxes(
        self, pack: str, maps: FeatureMaps, xyxy: NDArray[np.floating[Any]], class_names: Sequence[str | None],
        query: SimilarQuery = DEFAULT_QUERY, *, exclude_case: int | None = None,
    ) -> list[list[SimilarCase]]:
        """Similar instances for each box of a photo, embedded from that photo's feature maps of `pack`;
        `exclude_case`: the photo's own case in the bank, never its own similar case."""
        return self.for_findings(pack, maps, xyxy, class_names, query, exclude_case=exclude_case)[0]

    def for_findings(
        self, pack: str, maps: FeatureMaps, xyxy: NDArray[np.floating[Any]], class_names: Sequence[str | None],
        query: SimilarQuery = DEFAULT_QUERY, *, exclude_case: int | None = None, pixels: BGRImage | None = None,
    ) -> tuple[list[list[SimilarCase]], list[SimilarCase | None]]:
        """For each box: its similar instances (as `for_boxes`), and the rejected finding it matches, if any: a
        likely false alarm (None when the query asks for no check). A match is a rejected finding of the box's
        class whose box vector is at least `query.false_alarm_score` alike, on a photo whose scene looks at least
        `query.false_alarm_scene` alike (checked against `pixels`, the photo), at the same place in the frame
        (`query.false_alarm_place`)."""
        live = self.indexes
        if pack not in live or len(xyxy) == 0:
            return [[] for _ in range(len(xyxy))], [None] * len(xyxy)
        vectors = maps.embed_boxes(xyxy)
        cases = self._cases_at(query)
        with live[pack].lock:  # the index's background update waits for this search, and the reverse
            found = self._search_similar(live[pack], vectors, class_names, query, cases=cases,
                                         exclude_case=exclude_case)
            photo = None if pixels is None else Photo.of(pixels)
            alarms = [self._false_alarm(live[pack], vector, class_name, query, photo=photo, box=box)
                      for vector, box, class_name in zip(vectors, xyxy, class_names, strict=True)]
        similar = self._hydrate_all(found)
        return similar, [group[0] if group else None for group in self._hydrate_all(alarms)]

    def _search_similar(
        self, index: CaseIndex, vectors: NDArray[np.float32], class_names: Sequence[str | None], query: SimilarQuery,
        *, cases: set[int] | None, exclude_case: int | None,
    ) -> list[list[Hit]]:
        instances = index["instances"]
        allowed = None if cases is None else instances.ids_where(case_ids=cases)
        asked = query.k + (OWN_CASE_MARGIN if exclude_case is not None else 0)
        found = []
        for vector, class_name in zip(vectors, class_names, strict=True):
            hits = instances.search(vector[None], asked, allowed,
                                    class_name=class_name if query.same_class else None)[0]
            found.append([h for h in hits if h.case_id != exclude_case
                          and (query.min_score is None or h.score >= query.min_score)][: query.k])
        return found

    def _false_alarm(
        self, index: CaseIndex, vector: NDArray[np.float32], class_name: str | None, query: SimilarQuery, *,
        photo: Photo | None, box: NDArray[np.floating[Any]],
    ) -> list[Hit]:
        """The rejected finding the box (in pixels of `photo`) matches, as a list of one, or an empty list."""
        rejected = index["rejected"]
        if query.false_alarm_score is None or len(rejected) == 0:
            return []
        hits = [hit for hit in rejected.search(vector[None], FALSE_ALARM_CANDIDATES, class_name=class_name)[0]
                if hit.score >= query.false_alarm_score]
        if not hits or not (query.false_alarm_scene > -1 or query.false_alarm_place > -1):
            return hits[:1]
        if photo is None:
            return []  # the scene and the place cannot be checked without the photo
        if query.false_alarm_scene > -1:
            photos = index["photos"]
            hits = [hit for hit in hits if hit.case_id in photos.case_of
                    and scene_similarity(photos.vector(hit.case_id), photo.views) >= query.false_alarm_scene]
        if hits and query.false_alarm_place > -1:
            stored = self.records.relative_boxes(annotation_ids=[hit.id for hit in hits])
            hits = [hit for hit in hits if hit.id in stored
                    and same_place(photo.relative(box), np.array(stored[hit.id], np.float32))
                    >= query.false_alarm_place]
        return hits[:1]

    def case_of_photo(self, sha256: str) -> int | None:
        """The bank's case whose photo has these bytes, if any."""
        return self.bank.records.case_of_photo(sha256=sha256)

    def for_box(
        self, maps: Mapping[str, FeatureMaps], box: tuple[float, float, float, float], class_name: str | None,
        query: SimilarQuery = DEFAULT_QUERY,
    ) -> list[SimilarCase]:
        """Instances like one box of a photo (its maps per pack): every pack's index is asked, best first."""
        found = [self.for_boxes(pack, features, np.array([box], np.float64), [class_name], query)[0]
                 for pack, features in maps.items()]
        return _best(found, query.k, key=lambda case: case.annotation_id)

    def for_photo(
        self, views: Sequence[tuple[BGRImage, Mapping[str, FeatureMaps]]], query: SimilarQuery = DEFAULT_QUERY
    ) -> list[SimilarCase]:
        """Cases whose whole photo looks like this one, given one or more views of it (pixels and maps per
        pack): a case scores the mean of the packs' cosines, in the view where that mean is highest."""
        found = [self._for_view(pixels, maps, query) for pixels, maps in views]
        return _best(found, query.k, key=lambda case: case.case_id)

    def _for_view(self, pixels: BGRImage, maps: Mapping[str, FeatureMaps], query: SimilarQuery) -> list[SimilarCase]:
        live = self.indexes
        packs = [name for name in maps if name in live]
        if not packs:
            return []
        queries = {name: maps[name].embed_photo(pixels) for name in packs}
        cases = self._cases_at(query)
        allowed = None if cases is None else np.fromiter(cases, np.int64)
        candidates: set[int] = set()
        with contextlib.ExitStack() as reading:  # in one order (the packs'), so that no two searches deadlock
            for name in sorted(packs):
                reading.enter_context(live[name].lock)
            for name in packs:
                hits = live[name]["photos"].search(queries[name], max(CANDIDATES, query.k), allowed)[0]
                candidates.update(hit.case_id for hit in hits)
            ids = np.fromiter(candidates, np.int64)
            scores = np.mean([_scores(live[name]["photos"], queries[name][0], ids) for name in packs], axis=0)
        order = np.argsort(-scores, kind="stable")[: query.k]
        hits = [Hit(int(ids[i]), int(ids[i]), "", float(scores[i])) for i in order
                if query.min_score is None or scores[i] >= query.min_score]
        return self._hydrate(hits, whole_photo=True)

    def _cases_at(self, query: SimilarQuery) -> set[int] | None:
        """Case ids at the query's site and enterprise, or None when it names neither."""
        if not query.site and not query.enterprise:
            return None
        return self.records.case_ids_at(site=query.site, enterprise=query.enterprise)

    def _hydrate(self, hits: list[Hit], *, whole_photo: bool = False) -> list[SimilarCase]:
        return self._hydrate_all([hits], whole_photo=whole_photo)[0]

    def _hydrate_all(self, groups: list[list[Hit]], *, whole_photo: bool = False) -> list[list[SimilarCase]]:
        """Hits with what the bank knows about their cases, in the hits' order; one query for all groups."""
        hits = [hit for group in groups for hit in group]
        if not hits:
            return [[] for _ in groups]
        cases, boxes = self.records.summaries(case_ids={hit.case_id for hit in hits},
                                              annotation_ids=set() if whole_photo else {hit.id for hit in hits})
        return [[self._similar_case(hit, cases[hit.case_id], boxes.get(hit.id), whole_photo)
                 for hit in group if hit.case_id in cases]  # a case deleted since indexing is left out
                for group in groups]

    def _similar_case(self, hit: Hit, case: CaseSummary, box: tuple[float, float, float, float] | None,
                      whole_photo: bool) -> SimilarCase:
        class_name = hit.class_name or None
        entry = self.catalogue.entry(class_name) if class_name else None
        return SimilarCase(
            case_id=case.id, annotation_id=None if whole_photo else hit.id, score=round(hit.score, 5),
            class_name=class_name, hazard_code=entry.code if entry and entry.hazard else None,
            box=Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3]) if box else None,
            thumbnail=None if whole_photo else self.thumbnail(case.id, hit.id),
            source=case.source, site=case.site, enterprise=case.enterprise, captured_at=case.captured_at,
            description=case.description, rectification=case.rectification,
        )


def _best(found: Sequence[Sequence[SimilarCase]], k: int, key: Callable[[SimilarCase], object]) -> list[SimilarCase]:
    """The `k` best of several result lists, each item once (at its best score)."""
    best: dict[object, SimilarCase] = {}
    for cases in found:
        for case in cases:
            if key(case) not in best or case.score > best[key(case)].score:
                best[key(case)] = case
    return sorted(best.values(), key=lambda case: -case.score)[:k]


def _scores(index: VectorIndex, query: NDArray[np.float32], ids: NDArray[np.int64]) -> NDArray[np.float32]:
    """Cosine of `query` with the stored vectors of `ids` (0 where an id is not stored)."""
    return np.array([float(index.vector(int(i)) @ query) if int(i) in index.case_of else 0.0 for i in ids],
                    np.float32)




def open_search(
    home: Path | None, packs: Sequence[ModelPack], catalogue: Catalogue,
    thumbnail: Thumbnail | None = None,
) -> SimilarCaseSearch | None:
    """The search over the bank at `home` (default: the usual one), or None when no bank or index is there."""
    layout = Home.at(home)
    if not layout.similar.is_dir():
        return None
    search = SimilarCaseSearch.open(SampleBank(layout.root), packs, catalogue, thumbnail)
    return search if search.indexes else None


@dataclass(frozen=True)
class Photo:
    """What the false-alarm check compares of the scanned photo: its scene signatures and its size."""

    views: NDArray[np.float32]
    width: int
    height: int

    @classmethod
    def of(cls, pixels: BGRImage) -> Photo:
        return cls(scene_views(pixels), pixels.shape[1], pixels.shape[0])

    def relative(self, box: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        """The box (pixels) as fractions of the photo's width and height: where in the frame it is."""
        size = np.array([self.width, self.height, self.width, self.height], np.float32)
        return np.asarray(box, np.float32) / size


def same_place(box: NDArray[np.float32], stored: NDArray[np.float32]) -> float:
    """How much two photo-relative boxes overlap, the stored one taken upright or mirrored (a flipped copy of a
    photo holds its false alarm at the mirrored place): the higher IoU."""
    mirrored = np.array([1 - stored[2], stored[1], 1 - stored[0], stored[3]], np.float32)
    return float(box_iou(box[None], np.stack([stored, mirrored]))[0].max())
