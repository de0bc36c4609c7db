"""`/insights/hygiene` (the key hygiene findings grouped by kind, and the reconciliation status line) and
`/insights/reconciliation` (the days where a key's two figures disagree)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from owr_web.dependencies import SignedIn, Views

router = APIRouter(tags=["insights"])

# The findings in the report's order, with the heading each group gets.
FINDINGS = {
    "invalid_stored": "Invalid keys still stored",
    "expiring": "Expiring or expired",
    "no_limit": "No spending limit",
    "missing_upstream": "No longer listed by their account",
    "untracked_in_account": "Listed by an account, not stored here",
    "stale_sync": "Not synced for over 24 hours",
    "dormant": "Dormant (no spend for 14 days)",
}


RECONCILIATION = "/api/v1/insights/reconciliation"
PER_PAGE = 50
Page = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/insights/hygiene", include_in_schema=False)
async def hygiene(request: Request, visitor: SignedIn, views: Views) -> Response:
    report = await visitor.api.get("/api/v1/insights/hygiene")
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in report["items"]:
        groups.setdefault(item["finding"], []).append(item)
    sections = [(finding, title, groups[finding]) for finding, title in FINDINGS.items() if finding in groups]
    # The status line: the API's default range is the last 30 completed days; one item is enough for the count.
    gaps = (await visitor.api.get(RECONCILIATION, per_page=1))["total"]
    return views.render(request, "hygiene.html", {"sections": sections, "gaps": gaps}, visitor=visitor)


@router.get("/insights/reconciliation", include_in_schema=False)
async def reconciliation(request: Request, visitor: SignedIn, views: Views, page: Page = 1) -> Response:
    report = await visitor.api.get(RECONCILIATION, page=page, per_page=PER_PAGE)
    pages = max(1, -(-int(report["total"]) // PER_PAGE))
    context = {"report": report, "at": {"page": page, "pages": pages}}
    return views.render(request, "reconciliation.html", context, visitor=visitor)
