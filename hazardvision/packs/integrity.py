"""Model file integrity: the SHA-256 of each model file is in the card, and a pack whose file differs never loads.

A swapped or damaged `model.onnx` would otherwise run, and be promoted on the figures its card claims. Cards
written before hashes were recorded load with a warning, unless `HAZARDVISION_REQUIRE_MODEL_HASHES` is set (the
service's `require_model_hashes` setting).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from hazardvision.errors import ModelIntegrityError
from hazardvision.packs.card import ModelCard

log = logging.getLogger("hazardvision.packs")

REQUIRE_HASHES_ENV = "HAZARDVISION_REQUIRE_MODEL_HASHES"
_CHUNK = 1 << 20
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_files(card: ModelCard) -> list[str]:
    """The model files a card names (ONNX float32, int8, the trained weights), relative to the card."""
    return [name for name in (card.model_file, card.model_file_int8, card.weights_file) if name is not None]


def hash_files(folder: Path, card: ModelCard) -> dict[str, str]:
    """name -> SHA-256 of each model file of the card that is present in `folder` (what packaging records)."""
    return {name: file_sha256(folder / name) for name in model_files(card) if (folder / name).is_file()}


def hashes_required() -> bool:
    """Whether `HAZARDVISION_REQUIRE_MODEL_HASHES` asks that every model file have its hash in the card."""
    return os.environ.get(REQUIRE_HASHES_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def verify_files(folder: Path, card: ModelCard, names: Iterable[str] | None = None, *,
                 require: bool | None = None) -> None:
    """Check `names` (default: every model file present) against the card's `file_sha256`.

    ModelIntegrityError naming the file when one differs, or when a hash is missing and `require` (default:
    `hashes_required()`) is set; a missing hash otherwise only warns, once per pack version and file.
    """
    required = hashes_required() if require is None else require
    chosen = list(names) if names is not None else [n for n in model_files(card) if (folder / n).is_file()]
    for name in chosen:
        if not (folder / name).is_file():
            continue  # loading it says what is missing
        expected = card.file_sha256.get(name)
        if expected is None:
            if required:
                raise ModelIntegrityError(
                    f"{name} of {card.pack} {card.version} has no sha256 in its card, and model hashes are "
                    f"required ({REQUIRE_HASHES_ENV}); rebuild the pack with `hazardvision models build`, or turn "
                    "the setting off to load cards from before hashes were recorded")
            _warn_once(folder, name, card)
            continue
        if file_sha256(folder / name) != expected:
            raise ModelIntegrityError(f"{name} of {card.pack} {card.version} does not match its card's sha256: the "
                                      f"file was changed or damaged ({folder / name})")


def _warn_once(folder: Path, name: str, card: ModelCard) -> None:
    key = (str(folder.resolve()), name)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("%s of %s %s is loaded unchecked: its card (%s) records no sha256 of it (a pack from before hashes "
                "were recorded; set %s to refuse such packs)", name, card.pack, card.version, folder,
                REQUIRE_HASHES_ENV)
