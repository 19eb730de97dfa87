"""The model packs as `GET /v1/models` shows them, from the registry and their cards."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hazardvision.errors import HazardVisionError
from hazardvision.packs.registry import PackRegistry
from hazardvision.service.schemas.models import ModelsResponse, PackVersion, PackView

log = logging.getLogger("hazardvision.service")


def _active(registry: PackRegistry, pack: str) -> str | None:
    try:
        return registry.active(pack).version if registry.serves(pack) else None
    except (HazardVisionError, OSError):
        return None


def list_packs(registry: PackRegistry, serving: Mapping[str, str],
               down: Mapping[str, str] | None = None) -> ModelsResponse:
    """Every pack of the registry with its versions; `serving` is pack -> version in use, `down` pack -> why it
    failed to load."""
    packs = []
    for pack in registry.packs():
        active = _active(registry, pack)
        versions = []
        for version in registry.versions(pack):
            try:
                card = version.card()
            except (HazardVisionError, OSError) as error:
                log.warning("left out of the model list: %s", error)  # a half-copied version is not fatal
                continue
            versions.append(PackVersion(
                version=version.version, architecture=card.architecture, classes=list(card.classes),
                operating_confidence=card.operating_confidence, status=card.status, metrics=card.metrics,
                bundled=version.bundled, active=version.version == active,
                serving=serving.get(pack) == card.version,
            ))
        packs.append(PackView(pack=pack, active_version=active, serving_version=serving.get(pack),
                              down=(down or {}).get(pack), versions=versions))
    return ModelsResponse(packs=packs)
