"""Drawing findings on the photo, for inspectors and for the annotated-image endpoint."""

from __future__ import annotations

import cv2
import numpy as np

from hazardvision.catalogue import Catalogue, Severity
from hazardvision.detections import Detections
from hazardvision.images import BGRImage

SEVERITY_COLOURS: dict[Severity, tuple[int, int, int]] = {  # BGR
    Severity.LOW: (0, 200, 255),
    Severity.MEDIUM: (0, 140, 255),
    Severity.HIGH: (0, 0, 255),
    Severity.CRITICAL: (180, 0, 200),
}
CONTEXT_COLOUR = (80, 175, 76)


class HazardAnnotator:
    """Boxes coloured by severity (context objects in green) with English labels.

    OpenCV's built-in Hershey font has no Chinese glyphs and nothing may be downloaded, so the
    labels are the catalogue's English class names.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def annotate(self, scene: BGRImage, detections: Detections) -> BGRImage:
        """A copy of `scene` with every detection drawn on it."""
        canvas = scene.copy()
        thickness = max(1, round(max(canvas.shape[:2]) / 400))
        font_scale = max(0.4, max(canvas.shape[:2]) / 1600)
        for i in np.argsort(detections.confidence, kind="stable"):
            entry = self.catalogue.entry(str(detections.class_name[i]))
            colour = SEVERITY_COLOURS[entry.severity] if entry.hazard else CONTEXT_COLOUR
            x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[i])
            weight = thickness * 2 if entry.hazard else thickness
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, weight)
            label = f"{entry.class_name} {detections.confidence[i]:.2f}"
            (width, height), baseline = cv2.getTextSize(
                label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness
            )
            top = y1 - height - baseline if y1 - height - baseline >= 0 else y1
            cv2.rectangle(canvas, (x1, top), (x1 + width, top + height + baseline), colour, cv2.FILLED)
            cv2.putText(canvas, label, (x1, top + height), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                        (255, 255, 255), thickness, cv2.LINE_AA)
        return canvas


def encode_jpeg(image: BGRImage, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the annotated image as JPEG")
    return bytes(buffer.tobytes())
