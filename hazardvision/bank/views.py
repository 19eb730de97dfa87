"""What `bank` commands print with --json (and the service will return)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnnotationView(_View):
    id: int = Field(description="Annotation id.")
    class_name: str = Field(description="Catalogue class.")
    source_class: str | None = Field(description="Class name in the source dataset, before mapping.")
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels of the photo.")
    origin: str = Field(description="imported, detected, confirmed or rejected.")
    reviewer: str | None = Field(default=None, description="Who reviewed it, if anyone.")


class CaseView(_View):
    id: int = Field(description="Case id.")
    image_sha256: str = Field(description="SHA-256 of the photo's bytes.")
    image_path: str = Field(description="Where the photo is stored.")
    width: int = Field(description="Photo width in pixels.")
    height: int = Field(description="Photo height in pixels.")
    group_id: str | None = Field(description="Leakage group: photos of one group stay in one split.")
    source: str = Field(description="Dataset (or scan source) the case came from.")
    source_file: str = Field(description="File name within the source dataset.")
    source_split: str | None = Field(description="Split the source gave the photo, if any.")
    site: str | None = Field(default=None, description="Site name.")
    enterprise: str | None = Field(default=None, description="Enterprise name.")
    inspector: str | None = Field(default=None, description="Inspector who recorded it.")
    location: str | None = Field(default=None, description="Where on the site.")
    captured_at: dt.datetime | None = Field(default=None, description="When the photo was taken.")
    description: str | None = Field(default=None, description="What the case shows.")
    rectification: str | None = Field(default=None, description="How it was rectified.")
    annotations: list[AnnotationView] = Field(description="Boxes on the photo.")
    label_version: int = Field(default=1, description="The version of the case's labels the bank uses now (1 until "
                               "a correction; `bank history` shows every version).")


class SourceStats(_View):
    name: str = Field(description="Source dataset name.")
    kind: str = Field(description="What the source is: dataset, scan, or label-studio (a Label Studio export).")
    licence: str | None = Field(description="Licence of the source.")
    origin: str | None = Field(description="Where the source comes from.")
    cases: dict[str, int] = Field(description="Cases per source split ('none' when the source had no splits).")
    backgrounds: dict[str, int] = Field(description="Cases without any annotation, per split.")
    boxes: dict[str, dict[str, int]] = Field(description="Boxes per split and source class.")
    classes: dict[str, dict[str, int]] = Field(description="Boxes per split and catalogue class (e.g. no_helmet).")


class BankStats(_View):
    home: str = Field(description="Bank folder.")
    schema_version: int = Field(description="Schema version of the bank.")
    cases: int = Field(description="Number of cases.")
    images: int = Field(description="Number of stored photos.")
    annotations: dict[str, int] = Field(description="Annotations per catalogue class.")
    groups: int = Field(description="Number of leakage groups.")
    sources: list[SourceStats] = Field(description="Per-source counts.")


class LabelBox(_View):
    class_name: str = Field(description="Catalogue class.")
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels of the photo.")
    source_class: str | None = Field(default=None, description="Class name in the source dataset, if any.")
    origin: str | None = Field(default=None, description="imported, confirmed or corrected.")


class ClassChange(_View):
    box: tuple[float, float, float, float] = Field(description="The box (as the new labels give it).")
    before: str = Field(description="Class in the bank.")
    after: str = Field(description="Class in the new labels.")


class MovedBox(_View):
    class_name: str = Field(description="Catalogue class.")
    before: tuple[float, float, float, float] = Field(description="The box in the bank.")
    after: tuple[float, float, float, float] = Field(description="The box in the new labels.")


class LabelDifference(_View):
    file: str = Field(description="File name within the dataset (or the label file of a relabel).")
    case_id: int = Field(description="The case of the photo.")
    version: int = Field(description="The label version of the case that was compared.")
    added: list[LabelBox] = Field(default_factory=list, description="Boxes the new labels add.")
    removed: list[LabelBox] = Field(default_factory=list, description="Boxes of the bank the new labels lack.")
    class_changed: list[ClassChange] = Field(default_factory=list, description="Boxes whose class changed.")
    moved: list[MovedBox] = Field(default_factory=list, description="Boxes of one class that moved or resized.")
    updated_to: int | None = Field(default=None, description="The label version made of the new labels, if they "
                                   "were applied (`--update-labels`); null when the bank was left as it was.")

    def summary(self) -> str:
        """In words: '1 box added (no_helmet), 1 class changed (helmet -> no_helmet)'."""
        parts = []
        for count, what, names in (
            (len(self.added), "added", [b.class_name for b in self.added]),
            (len(self.removed), "removed", [b.class_name for b in self.removed]),
            (len(self.class_changed), "class changed", [f"{c.before} -> {c.after}" for c in self.class_changed]),
            (len(self.moved), "moved", [b.class_name for b in self.moved]),
        ):
            if count:
                parts.append(f"{count} box{'es' if count > 1 else ''} {what} ({', '.join(names)})")
        return ", ".join(parts)


class LabelVersionView(_View):
    version: int = Field(description="Version number; 1 is the labels as the case was first recorded.")
    created_at: dt.datetime = Field(description="When the version was made.")
    author: str = Field(description="Who or what made it: a user, or 'import of <source>'.")
    via: str = Field(description="recorded (version 1), import (a re-import with --update-labels), relabel, or "
                     "review (an inspector's review added a box; its reason names the review).")
    reason: str | None = Field(description="Why the labels were changed.")
    labels: list[LabelBox] = Field(description="The boxes of this version.")
    current: bool = Field(description="Whether this is the version the bank uses now.")


class RelabelResult(_View):
    case_id: int = Field(description="The case relabelled.")
    version: int = Field(description="The case's label version now.")
    changed: bool = Field(description="False when the labels were those of the case already (no version made).")
    difference: LabelDifference = Field(description="What changed against the previous version.")
