"""Scanning: photo in, explained hazards out.

decode (by the caller) -> every active model pack -> catalogue lookup -> `ScanResult`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from hazardvision.catalogue import Catalogue, Severity
from hazardvision.detections import Detections
from hazardvision.images import DecodedImage
from hazardvision.model_pack import ModelPack
from hazardvision.results import (
    Box,
    DetectedObject,
    Finding,
    HazardInfo,
    ImageInfo,
    ModelRef,
    ScanResult,
)

SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Scanner:
    """Runs the active model packs on photos and explains what they find with the catalogue."""

    def __init__(self, packs: Sequence[ModelPack], catalogue: Catalogue) -> None:
        if not packs:
            raise ValueError("a scanner needs at least one model pack")
        for pack in packs:
            catalogue.require(pack.card.classes, f"model pack {pack.name} {pack.version}")
        self.packs = list(packs)
        self.catalogue = catalogue

    def detect(
        self, images: Sequence[DecodedImage], *, confidence: float | None = None
    ) -> tuple[list[Detections], dict[str, float]]:
        """Detections of every pack, merged per photo, and the milliseconds each pack took."""
        per_pack: list[list[Detections]] = []
        timings: dict[str, float] = {}
        pixels = [image.pixels for image in images]
        for pack in self.packs:
            start = time.perf_counter()
            per_pack.append(pack.detect(pixels, confidence=confidence))
            timings[f"detect_{pack.name}"] = (time.perf_counter() - start) * 1000 / max(len(images), 1)
        merged = [Detections.merge(found) for found in zip(*per_pack, strict=True)]
        return merged, timings

    def scan(
        self,
        images: Sequence[DecodedImage],
        sources: Sequence[str],
        *,
        confidence: float | None = None,
        decode_ms: Sequence[float] | None = None,
    ) -> list[ScanResult]:
        """Scan photos (batched through each pack); one result per photo, in order.

        `confidence` overrides every pack's operating threshold, for objects and findings alike.
        """
        detections, timings = self.detect(images, confidence=confidence)
        results = []
        for i, (image, source, found) in enumerate(zip(images, sources, detections, strict=True)):
            start = time.perf_counter()
            result = self.explain(image, source, found)
            result.timings_ms.update(timings)
            result.timings_ms["explain"] = (time.perf_counter() - start) * 1000
            if decode_ms is not None:
                result.timings_ms["decode"] = decode_ms[i]
            result.timings_ms["total"] = sum(result.timings_ms.values())
            results.append(result)
        return results

    def explain(self, image: DecodedImage, source: str, detections: Detections) -> ScanResult:
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
            if entry.hazard and entry.advice is not None:
                hazard = HazardInfo(code=entry.code, name=entry.name, severity=entry.severity,
                                    category=entry.category, rules=list(entry.rules), advice=entry.advice)
                findings.append(Finding(id=uuid.uuid4().hex, class_name=class_name, confidence=confidence,
                                        box=box, pack=pack, hazard=hazard))
        findings.sort(key=lambda f: (-SEVERITY_RANK[f.hazard.severity], -f.confidence))
        return ScanResult(
            source=source,
            image=ImageInfo(width=image.width, height=image.height, sha256=image.sha256),
            models=[ModelRef(pack=p.name, version=p.version, precision=p.precision.value) for p in self.packs],
            findings=findings,
            objects=objects,
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
