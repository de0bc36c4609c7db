"""`/insights/hygiene`: one API call, the workspace's key hygiene findings grouped by kind."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
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


@router.get("/insights/hygiene", include_in_schema=False)
async def hygiene(request: Request, visitor: SignedIn, views: Views) -> Response:
    report = await visitor.api.get("/api/v1/insights/hygiene")
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in report["items"]:
        groups.setdefault(item["finding"], []).append(item)
    sections = [(finding, title, groups[finding]) for finding, title in FINDINGS.items() if finding in groups]
    return views.render(request, "hygiene.html", {"sections": sections}, visitor=visitor)
