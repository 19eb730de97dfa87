"""Model packs: what is installed, what is active, and activating another version."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.packs.card import Metrics
from hazardvision.packs.promotion import DEFAULT_TOLERANCE, MAX_TOLERANCE

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
PACK_PATTERN = r"^[a-z][a-z0-9-]*$"


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PackVersion(_Schema):
    """One version of a pack, from its model card."""

    version: str = Field(description="Version name.")
    architecture: str | None = Field(default=None, description="Detector architecture, e.g. 'yolo26n'.")
    classes: list[str] = Field(description="Catalogue classes the model detects.")
    operating_confidence: float | None = Field(default=None, description="Confidence at which findings are reported.")
    status: str | None = Field(default=None, description="How the model was made, from its card.")
    metrics: Metrics | None = Field(description="Test metrics from the card (per precision and dataset: mAP50, "
                                    "and per class precision, recall, ...).")
    bundled: bool = Field(description="Whether the version was released with the service (else the home's own).")
    active: bool = Field(description="Whether this is the pack's active version (the home's ACTIVE file, else the "
                         "bundled one, names it).")
    serving: bool = Field(description="Whether this service is scanning with this version now.")


class PackView(_Schema):
    """A model pack and its versions."""

    pack: str = Field(description="Pack name, e.g. 'ppe'.")
    active_version: str | None = Field(description="Active version; None while the pack is staged or replaced.")
    serving_version: str | None = Field(description="Version this service scans with.")
    down: str | None = Field(default=None, description="Why the pack does not serve in this service, when its "
                             "active version failed to load (a model file that differs from its card's sha256, a "
                             "damaged file); the other packs serve, and activating a good version brings it back.")
    versions: list[PackVersion] = Field(description="Every installed version, by name.")


class ModelsResponse(_Schema):
    """The installed model packs."""

    packs: list[PackView] = Field(description="Every pack, by name.")


class ActivateRequest(_Schema):
    """Which version to make active."""

    version: str = Field(min_length=1, max_length=100, pattern=VERSION_PATTERN, description="Version to activate.")
    force: bool = Field(default=False, description="Activate even if the promotion gate refuses, or cannot score "
                        "(role admin only); audited as forced. A model file that differs from its card's sha256 is "
                        "refused even so.")
    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0, le=MAX_TOLERANCE,
                             description="Largest mAP50 drop below the active version the gate allows on any test "
                             f"split, both scored now; at most {MAX_TOLERANCE} (a worse model needs force).")


class Comparison(_Schema):
    """mAP50 of the active and the new version on one test split, both scored by the gate at activation."""

    dataset: str = Field(description="Dataset of the split (or of the bank's test-split cases).")
    split_id: str = Field(description="Content id of what was scored (the split's photos and labels).")
    active: float = Field(description="mAP50 of the version that was active.")
    candidate: float = Field(description="mAP50 of the activated version.")
    source: str = Field(default="datasets", description="What was scored: 'datasets' (the split under the datasets "
                        "root), 'bank' (the bank's test-split cases of that dataset), or 'card' where the active "
                        "version no longer loads and its card's recorded figure stood in for it.")


class ActivateResponse(_Schema):
    """The activation, and what the service serves with now."""

    pack: str = Field(description="Pack name.")
    version: str = Field(description="The version now active.")
    previous_version: str | None = Field(description="The version served before.")
    forced: bool = Field(description="Whether the gate was bypassed.")
    comparisons: list[Comparison] = Field(description="The gate's comparisons, scored at activation (empty when "
                                          "forced, or when the version was active already).")
    serving: dict[str, str] = Field(description="Pack -> version the service scans with now.")
