"""The installed model packs as `GET /v1/models` shows them, read from their cards."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hazardvision.errors import HazardVisionError
from hazardvision.packs.model_pack import CARD_FILE, active_version
from hazardvision.service.schemas.models import ModelsResponse, PackVersion, PackView


def _card(folder: Path) -> dict[str, Any] | None:
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # a half-copied or broken version is left out, not fatal to the listing
    return card if isinstance(card, dict) else None


def _active(pack: Path) -> str | None:
    try:
        return active_version(pack).name
    except (HazardVisionError, OSError):
        return None


def list_packs(models_dir: Path, serving: Mapping[str, str]) -> ModelsResponse:
    """Every pack under `models_dir` with its versions; `serving` is pack -> version in use."""
    packs = []
    folders = sorted(p for p in models_dir.iterdir() if p.is_dir()) if models_dir.is_dir() else []
    for pack in folders:
        active = _active(pack)
        versions = []
        for folder in sorted(v for v in pack.iterdir() if (v / CARD_FILE).is_file()):
            card = _card(folder)
            if card is None:
                continue
            metrics = card.get("metrics")
            versions.append(PackVersion(
                version=folder.name, architecture=card.get("architecture"), classes=list(card.get("classes", [])),
                operating_confidence=card.get("operating_confidence"), status=card.get("status"),
                metrics=metrics if isinstance(metrics, dict) else {}, active=folder.name == active,
                serving=serving.get(pack.name) == str(card.get("version", folder.name)),
            ))
        packs.append(PackView(pack=pack.name, active_version=active, serving_version=serving.get(pack.name),
                              versions=versions))
    return ModelsResponse(packs=packs)
