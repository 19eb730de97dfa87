"""Audit records of promotions, the same whether the CLI (`models promote`) or the API (activate) made them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hazardvision.data.audit import AuditLog
from hazardvision.errors import HazardVisionError
from hazardvision.packs.promotion import ClassComparison, Comparison

ACTIVATED = "model.activate"
REFUSED = "model.activate_refused"
"""A promotion the gate (or a file's integrity, or loading) refused, or that failed: recorded with its reason."""


def _rows(comparisons: Sequence[Comparison | ClassComparison]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for c in comparisons:
        row: dict[str, Any] = {"dataset": c.dataset, "active": c.active, "candidate": c.candidate}
        if isinstance(c, Comparison):
            row |= {"split_id": c.split_id, "source": c.source}
        else:
            row |= {"replaced": c.replaced, "class": c.class_name}
        rows.append(row)
    return rows


def record_promotion(
    audit: AuditLog, actor: str, pack: str, version: str, *, previous: str | None, forced: bool, tolerance: float,
    comparisons: Sequence[Comparison | ClassComparison], via: str, replaces: Sequence[str] = (),
    serving: Mapping[str, str] | None = None,
) -> None:
    """One `model.activate` record: what became active, what it replaced, whether forced, what the gate scored."""
    audit.append(actor, ACTIVATED, f"{pack} {version}", model_versions=serving,
                 details={"pack": pack, "version": version, "previous": previous, "forced": forced,
                          "tolerance": tolerance, "via": via, "replaces": list(replaces),
                          "comparisons": _rows(comparisons)})


def record_refusal(
    audit: AuditLog, actor: str, pack: str, version: str, error: HazardVisionError, *, previous: str | None,
    forced: bool, tolerance: float, via: str, replaces: Sequence[str] = (),
) -> None:
    """One `model.activate_refused` record: the promotion asked for and why it did not happen."""
    audit.append(actor, REFUSED, f"{pack} {version}",
                 details={"pack": pack, "version": version, "previous": previous, "forced": forced,
                          "tolerance": tolerance, "via": via, "replaces": list(replaces),
                          "error": type(error).__name__, "reason": str(error)})
