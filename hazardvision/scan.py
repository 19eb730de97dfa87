"""Scanning: photo in, explained hazards out.

decode (by the caller) -> frame quality (a photo that shows no scene skips detection) -> every
active model pack -> catalogue lookup -> `ScanResult`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hazardvision.catalogue import Catalogue, Severity
from hazardvision.detections import Detections
from hazardvision.frame_quality import FrameQuality, assess
from hazardvision.images import DecodedImage
from hazardvision.packs.embedding import FeatureMaps
from hazardvision.packs.model_pack import ModelPack
from hazardvision.packs.tiling import TilingMode
from hazardvision.results import (
    Box,
    DetectedObject,
    Finding,
    HazardInfo,
    ImageInfo,
    ModelRef,
    QualityInfo,
    ScanResult,
)
from hazardvision.similar.query import SimilarQuery

if TYPE_CHECKING:  # the search needs faiss and the bank; a plain scan loads neither
    from hazardvision.similar.search import SimilarCaseSearch

SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Scanner:
    """Runs the active model packs on photos and explains what they find with the catalogue.

    With `similar`, each finding also gets the past cases that look like it; the detector's
    forward pass then returns the feature maps that the search embeds, so it runs only once.
    """

    def __init__(
        self, packs: Sequence[ModelPack], catalogue: Catalogue, *,
        similar: SimilarCaseSearch | None = None, similar_query: SimilarQuery | None = None,
    ) -> None:
        if not packs:
            raise ValueError("a scanner needs at least one model pack")
        for pack in packs:
            catalogue.require(pack.card.classes, f"model pack {pack.name} {pack.version}")
        self.packs = list(packs)
        self.catalogue = catalogue
        self.similar = similar
        self.similar_query = similar_query

    def detect(
        self, images: Sequence[DecodedImage], *, confidence: float | None = None, tiling: TilingMode | None = None,
    ) -> tuple[list[Detections], dict[str, float], list[dict[str, FeatureMaps]]]:
        """Detections of every pack merged per photo, the milliseconds each pack took, and (when
        searching similar cases) each photo's feature maps per pack."""
        per_pack: list[list[Detections]] = []
        maps: list[dict[str, FeatureMaps]] = [{} for _ in images]
        timings: dict[str, float] = {}
        pixels = [image.pixels for image in images]
        for pack in self.packs:
            start = time.perf_counter()
            if self.similar is None:
                per_pack.append(pack.detect(pixels, confidence=confidence, tiling=tiling))
            else:
                found = pack.detect_with_features(pixels, confidence=confidence, tiling=tiling)
                per_pack.append([detections for detections, _ in found])
                for photo_maps, (_, features) in zip(maps, found, strict=True):
                    photo_maps[pack.name] = features
            timings[f"detect_{pack.name}"] = (time.perf_counter() - start) * 1000 / max(len(images), 1)
        merged = [Detections.merge(found) for found in zip(*per_pack, strict=True)]
        return merged, timings, maps

    def scan(
        self,
        images: Sequence[DecodedImage],
        sources: Sequence[str],
        *,
        confidence: float | None = None,
        decode_ms: Sequence[float] | None = None,
        tiling: TilingMode | None = None,
    ) -> list[ScanResult]:
        """Scan photos (batched through each pack); one result per photo, in order.

        `confidence` overrides every pack's operating threshold, for objects and findings alike;
        `tiling` (on, off, auto) overrides each pack's default for large photos.
        """
        start = time.perf_counter()
        qualities = [assess(image.pixels) for image in images]
        quality_ms = (time.perf_counter() - start) * 1000 / max(len(images), 1)
        scene = [i for i, quality in enumerate(qualities) if quality.ok]
        found_in_scene, timings, maps_in_scene = self.detect([images[i] for i in scene], confidence=confidence,
                                                             tiling=tiling)
        detections = [Detections.empty() for _ in images]
        maps: list[dict[str, FeatureMaps]] = [{} for _ in images]
        for i, found, photo_maps in zip(scene, found_in_scene, maps_in_scene, strict=True):
            detections[i], maps[i] = found, photo_maps
        results = []
        for i, (image, source, found) in enumerate(zip(images, sources, detections, strict=True)):
            start = time.perf_counter()
            result = self.explain(image, source, found, qualities[i])
            result.timings_ms["frame_quality"] = quality_ms
            result.timings_ms.update(timings if qualities[i].ok else {})
            result.timings_ms["explain"] = (time.perf_counter() - start) * 1000
            if self.similar is not None:
                start = time.perf_counter()
                self.attach_similar(result, image, maps[i])
                result.timings_ms["similar"] = (time.perf_counter() - start) * 1000
            if decode_ms is not None:
                result.timings_ms["decode"] = decode_ms[i]
            result.timings_ms["total"] = sum(result.timings_ms.values())
            results.append(result)
        return results

    def attach_similar(self, result: ScanResult, image: DecodedImage, maps: dict[str, FeatureMaps]) -> None:
        """Fill each finding's `similar_cases` (and `likely_false_alarm`) from the index of the pack that found
        it, leaving the photo's own case out; say which case the photo is."""
        if self.similar is None:
            return
        query = self.similar_query or SimilarQuery()
        result.bank_case_id = self.similar.case_of_photo(image.sha256)
        for pack, features in maps.items():
            mine = [finding for finding in result.findings if finding.pack == pack]
            if not mine:
                continue
            boxes = np.array([[f.box.x1, f.box.y1, f.box.x2, f.box.y2] for f in mine], np.float64)
            found, alarms = self.similar.for_findings(pack, features, boxes, [f.class_name for f in mine], query,
                                                      exclude_case=result.bank_case_id, pixels=image.pixels)
            for finding, cases, alarm in zip(mine, found, alarms, strict=True):
                # A rejected finding is named, never shown: its photo was a false alarm, not a case to look at.
                finding.similar_cases = cases
                finding.likely_false_alarm = None if alarm is None else alarm.model_copy(update={"thumbnail": None})
        if query.suppress_false_alarms:
            result.findings = [finding for finding in result.findings if finding.likely_false_alarm is None]

    def explain(self, image: DecodedImage, source: str, detections: Detections,
                quality: FrameQuality | None = None) -> ScanResult:
        """Turn one photo's detections into findings (hazards) and objects (everything)."""
        order = detections.confidence.argsort(kind="stable")[::-1]
        detections = detections[order]
        findings: list[Finding] = []
        objects: list[DetectedObject] = []
        packs = detections.data.get("pack")
        for i, class_name in enumerate(detections.class_name.tolist()):
            entry = self.catalogue.entry(class_name)
            x1, y1, x2, y2 = (round(float(v), 2) for v in detections.xyxy[i])
            box = Box(x1=x1, y1=y1, x2=x2, y2=y2)
            confidence = round(float(detections.confidence[i]), 5)
            pack = str(packs[i]) if packs is not None else ""
            objects.append(DetectedObject(class_name=class_name, confidence=confidence, box=box, pack=pack,
                                          is_hazard=entry.hazard))
            hazard = HazardInfo.of(entry)
            if hazard is not None:
                findings.append(Finding(id=uuid.uuid4().hex, class_name=class_name, confidence=confidence,
                                        box=box, pack=pack, hazard=hazard))
        findings.sort(key=lambda f: (-SEVERITY_RANK[f.hazard.severity], -f.confidence))
        return ScanResult(
            source=source,
            image=ImageInfo(width=image.width, height=image.height, sha256=image.sha256),
            models=[ModelRef(pack=p.name, version=p.version, precision=p.precision.value) for p in self.packs],
            findings=findings,
            objects=objects,
            frame_quality=QualityInfo.of(quality) if quality is not None else QualityInfo(),
            timings_ms={},
        )


def result_detections(result: ScanResult) -> Detections:
    """The objects of a scan result as `Detections`, e.g. to annotate a stored scan."""
    names = tuple(dict.fromkeys(obj.class_name for obj in result.objects))
    return Detections.of(
        xyxy=[[o.box.x1, o.box.y1, o.box.x2, o.box.y2] for o in result.objects],
        confidence=[o.confidence for o in result.objects],
        class_id=[names.index(o.class_name) for o in result.objects],
        class_names=names,
        data={"pack": [o.pack for o in result.objects]},
    )
