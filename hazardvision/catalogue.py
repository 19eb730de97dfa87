"""The hazard catalogue: what each detector class means on a site, validated on load."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hazardvision.errors import CatalogueError, UnknownClass
from hazardvision.resources import bundled_path
from hazardvision.yaml_files import load_yaml_model


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Category(StrEnum):
    PPE = "ppe"
    FIRE = "fire"
    VEHICLE = "vehicle"
    PERSON = "person"
    ELECTRICAL = "electrical"
    HEIGHT = "height"
    HOUSEKEEPING = "housekeeping"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NonEmpty = Annotated[str, Field(min_length=1)]


class Text(_Strict):
    """A text in English and Simplified Chinese."""

    en: NonEmpty = Field(description="English text.")
    zh: NonEmpty = Field(description="Simplified Chinese text.")


class Rule(_Strict):
    """A rule a hazard breaks: the clause, and what it requires in one sentence."""

    ref: NonEmpty = Field(description="The clause, e.g. 'PRC Work Safety Law (2021) art. 57'.")
    summary: NonEmpty = Field(description="What the clause requires, paraphrased.")


class CatalogueEntry(_Strict):
    """One detector class: a hazard, or context that hazard rules use."""

    class_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = Field(
        description="The catalogue class a detector emits, e.g. 'no_helmet'."
    )
    hazard: bool = Field(description="True if a detection of this class is a finding by itself.")
    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]*$")] = Field(description="Stable hazard code.")
    name: Text = Field(description="Human-readable name.")
    category: Category = Field(description="Hazard family.")
    severity: Severity = Field(description="How serious a finding of this class is.")
    rules: tuple[Rule, ...] = Field(default=(), description="Rules a finding of this class breaks.")
    advice: Text | None = Field(default=None, description="How to rectify a finding of this class.")

    @model_validator(mode="after")
    def _hazards_are_explained(self) -> Self:
        if self.hazard and (not self.rules or self.advice is None):
            raise ValueError(f"hazard class {self.class_name!r} needs at least one rule and advice")
        return self


class Catalogue(_Strict):
    """All catalogue entries, looked up by class name."""

    version: int = Field(ge=1, description="Catalogue format version.")
    classes: tuple[CatalogueEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for attribute in ("class_name", "code"):
            values = [getattr(entry, attribute) for entry in self.classes]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{attribute} must be unique; repeated: {repeated}")
        return self

    def entry(self, class_name: str) -> CatalogueEntry:
        """The entry of a class, or `UnknownClass` naming the classes that exist."""
        for entry in self.classes:
            if entry.class_name == class_name:
                return entry
        known = ", ".join(entry.class_name for entry in self.classes)
        raise UnknownClass(f"class {class_name!r} is not in the hazard catalogue (known: {known})")

    def require(self, class_names: tuple[str, ...], source: str) -> None:
        """Fail early, naming `source`, if any of `class_names` lacks a catalogue entry."""
        known = {entry.class_name for entry in self.classes}
        missing = [name for name in class_names if name not in known]
        if missing:
            raise UnknownClass(
                f"{source} emits classes {missing} that the hazard catalogue lacks; add them to the "
                "catalogue or map them onto catalogue classes in the model card's class_map"
            )


DEFAULT_CATALOGUE = "samples/catalogue.yaml"


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and validate a catalogue file: `path`, else `$HAZARDVISION_CATALOGUE`, else the bundled one."""
    chosen = path if path is not None else os.environ.get("HAZARDVISION_CATALOGUE")
    file = Path(chosen) if chosen else bundled_path(DEFAULT_CATALOGUE)
    return load_yaml_model(file, Catalogue, CatalogueError, "the hazard catalogue")
