"""Small builders for the data-layer tests: a database in a home folder, photos and cases made of plain values."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hazardvision.data.cases import Cases, NewAnnotation, NewCase, NewPhoto
from hazardvision.data.database import Database
from hazardvision.data.image_store import ImageStore
from hazardvision.home import Home


def open_cases(home: Path, url: str) -> Cases:
    """The cases of a bank at `home` on the database at `url`, recovered as opening a bank does."""
    layout = Home.at(home)
    layout.root.mkdir(parents=True, exist_ok=True)
    cases = Cases(Database(url, layout), ImageStore(layout.images))
    cases.recover()
    return cases


def photo(seed: int, *, width: int = 64, height: int = 48) -> NewPhoto:
    """A photo of made-up bytes (the data layer never decodes them)."""
    data = f"photo {seed}".encode() * 10
    return NewPhoto(sha256=hashlib.sha256(data).hexdigest(), data=data, width=width, height=height, format="JPEG",
                    dhash=seed, dhash_bilinear=-seed)


def case(seed: int, *classes: str, split: str | None = "train") -> NewCase:
    """A case of `photo(seed)` with one box per class."""
    return NewCase(photo=photo(seed), source_file=f"photo{seed}.jpg", source_split=split,
                   annotations=tuple(NewAnnotation(class_name=name, box=(1, 2, 10 + i, 20), origin="imported",
                                                   source_class=name) for i, name in enumerate(classes)))
