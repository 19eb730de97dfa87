"""/v1/findings/{id}/review and /v1/reviews: inspectors' verdicts on findings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from hazardvision.service.deps import ReviewKey, ReviewScopeDep, RuntimeDep, signed_in
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.reviews import (
    PendingFilter,
    PendingList,
    ReviewFilter,
    ReviewList,
    ReviewRequest,
    ReviewResponse,
)

router = APIRouter(tags=["reviews"], responses=responses())


@router.post("/v1/findings/{finding_id}/review", response_model=ReviewResponse, status_code=201,
             responses=responses(404, 409), summary="Confirm or reject a finding")
async def review_finding(
    finding_id: Annotated[str, Path(min_length=1, max_length=64, description="Finding id, from a scan's findings.")],
    review: ReviewRequest, request: Request, runtime: RuntimeDep, *, key: ReviewKey, scope: ReviewScopeDep,
) -> ReviewResponse:
    """A confirmed finding becomes a case in the sample bank (and a similar case for later scans); a rejected one
    is kept as a known false alarm. A finding is reviewed once: a second review gets 409. 404 for a finding of a
    scan the key does not read (setting scan_scope)."""
    if signed_in(request):  # a page's reviewer is its signed-in key, never free text
        review = review.model_copy(update={"reviewer": None})
    return await runtime.offload(runtime.reviews.review, finding_id, review, key.name, scope)


@router.get("/v1/findings", response_model=PendingList, summary="The review queue")
async def pending_findings(runtime: RuntimeDep, scope: ReviewScopeDep,
                           query: Annotated[PendingFilter, Query()]) -> PendingList:
    """Findings not yet reviewed, newest scan first; by site, enterprise and severity; of the scans the key reads."""
    return PendingList(findings=await runtime.offload(runtime.reviews.pending, query, scope))


@router.get("/v1/reviews", response_model=ReviewList, summary="List reviews")
async def list_reviews(runtime: RuntimeDep, scope: ReviewScopeDep,
                       query: Annotated[ReviewFilter, Query()]) -> ReviewList:
    """Newest first; filtered by scan, or by the site or enterprise of the scans; of the scans the key reads."""
    found = await runtime.offload(runtime.reviews.list, scan_id=query.scan_id, site=query.site,
                                  enterprise=query.enterprise, limit=query.limit, offset=query.offset,
                                  visibility=scope)
    return ReviewList(reviews=found)
