"""Mapping a dataset's classes onto catalogue classes, or dropping them, before import."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hazardvision.catalogue import Catalogue
from hazardvision.errors import ClassMappingError


@dataclass(frozen=True)
class ClassMap:
    """Source class to catalogue class; None drops the class (its images stay as backgrounds)."""

    targets: dict[str, str | None]

    def target(self, source_class: str) -> str | None:
        return self.targets[source_class]


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """`src=dst` strings from the command line into a dict."""
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ClassMappingError(f"--map {pair!r}: write it as SOURCE_CLASS=CATALOGUE_CLASS")
        mapping[source.strip()] = target.strip()
    return mapping


def build_class_map(
    classes: Sequence[str], catalogue: Catalogue, mapping: dict[str, str], drop: Iterable[str]
) -> ClassMap:
    """Every dataset class must be mapped, dropped, or already be a catalogue class."""
    drop = set(drop)
    known = {entry.class_name for entry in catalogue.classes}
    unknown_sources = sorted((set(mapping) | drop) - set(classes))
    if unknown_sources:
        raise ClassMappingError(f"--map/--drop name classes the dataset does not have: {unknown_sources}; "
                                f"its classes are {list(classes)}")
    targets: dict[str, str | None] = {}
    unmapped = []
    for name in classes:
        if name in drop:
            targets[name] = None
        elif name in mapping:
            if mapping[name] not in known:
                raise ClassMappingError(f"--map {name}={mapping[name]}: {mapping[name]!r} is not a catalogue class "
                                        f"(catalogue: {sorted(known)})")
            targets[name] = mapping[name]
        elif name in known:
            targets[name] = name
        else:
            unmapped.append(name)
    if unmapped:
        raise ClassMappingError(
            f"dataset classes {unmapped} are not catalogue classes; map each with --map CLASS=CATALOGUE_CLASS "
            f"or drop it with --drop CLASS (catalogue: {sorted(known)})"
        )
    return ClassMap(targets)
