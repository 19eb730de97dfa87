"""/v1/catalogue: the hazard catalogue the service reports findings from."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hazardvision.catalogue import CatalogueEntry
from hazardvision.service.deps import RuntimeDep, ScanKey
from hazardvision.service.schemas.common import responses

router = APIRouter(prefix="/v1/catalogue", tags=["catalogue"], responses=responses())


class CatalogueView(BaseModel):
    """Every class a detector emits: the hazards with their rules and advice, and the context classes."""

    model_config = ConfigDict(extra="forbid")

    classes: list[CatalogueEntry] = Field(description="The catalogue's classes, in its order.")


@router.get("", response_model=CatalogueView, summary="The hazard catalogue")
async def catalogue(runtime: RuntimeDep, _key: ScanKey) -> CatalogueView:
    """Class names, hazard codes, names in English and Chinese, severities, rules and advice."""
    return CatalogueView(classes=list(runtime.catalogue.classes))
