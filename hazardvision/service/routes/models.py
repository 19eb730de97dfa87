"""/v1/models: the installed packs, and activating a version without downtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from hazardvision.service.deps import ActivateKey, ModelsKey, RuntimeDep
from hazardvision.service.packs import list_packs
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.models import PACK_PATTERN, ActivateRequest, ActivateResponse, ModelsResponse

router = APIRouter(prefix="/v1/models", tags=["models"], responses=responses())


@router.get("", response_model=ModelsResponse, summary="Installed model packs and their versions")
async def get_models(runtime: RuntimeDep, _key: ModelsKey) -> ModelsResponse:
    """Every pack version with its card's metrics; which is active, and which this service scans with."""
    return await runtime.offload(list_packs, runtime.registry, runtime.host.versions, runtime.host.down)


@router.post("/{pack}/activate", response_model=ActivateResponse, responses=responses(404, 409),
             summary="Activate a version of a pack")
async def activate(
    pack: Annotated[str, Path(pattern=PACK_PATTERN, max_length=100, description="Pack name, e.g. 'ppe'.")],
    request: ActivateRequest, runtime: RuntimeDep, key: ActivateKey,
) -> ActivateResponse:
    """Through the same promotion gate as `hazardvision models promote`: the version's files are checked against
    their sha256 (422 when one differs) and it is scored with the active version on the same test splits (409 when
    it is worse, or when there is nothing to score on; `force` needs role admin). Refusals are audited too. The new
    version is loaded, and its similar-case index built, before requests move to it; requests in flight finish on
    the version they started with. A pack whose active version failed to load can be given a good one this way."""
    return await runtime.activate(pack, request, key)
