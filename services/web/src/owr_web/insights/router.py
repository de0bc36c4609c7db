"""`/insights` (a redirect to the first of these), `/insights/hygiene` (the key hygiene findings grouped by kind,
the reconciliation status line, and "Apply suggested limit"), `/insights/prices` (effective prices per model and
provider, and their drift) and `/insights/reconciliation` (the days where a key's two figures disagree)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, Day, SignedIn, Views, Visitor, parse_day
from owr_web.insights import service as insights
from owr_web.views.forms import notice, parse_number
from owr_web.views.pages import Pages

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


NOTICES = {"limit": "Asked: the suggested limit is set at OpenRouter within moments (see the key's page)."}


async def _hygiene_page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    report = await visitor.api.get("/api/v1/insights/hygiene")
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in report["items"]:
        groups.setdefault(item["finding"], []).append(item)
    sections = [(finding, title, groups[finding]) for finding, title in FINDINGS.items() if finding in groups]
    # The status line: the API's default range is the last 30 completed days; one item is enough for the count.
    gaps = (await visitor.api.get(RECONCILIATION, per_page=1))["total"]
    context = {"sections": sections, "gaps": gaps, "notice": notice(done, NOTICES), "error": error}
    return views.render(request, "hygiene.html", context, visitor=visitor, status=status)


@router.get("/insights", include_in_schema=False)
async def index() -> Response:
    """DESIGN §10's `/insights`: the section's first page (the header's Insights entry links there directly)."""
    return RedirectResponse("/insights/hygiene", status_code=303)


@router.get("/insights/hygiene", include_in_schema=False)
async def hygiene(
    request: Request, visitor: SignedIn, views: Views, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    return await _hygiene_page(request, views, visitor, done=done)


@router.post("/insights/hygiene/apply-limit", include_in_schema=False)
async def apply_limit(
    request: Request,
    visitor: Checked,
    views: Views,
    key_id: Annotated[uuid.UUID, Form()],
    amount_usd: Annotated[str, Form(max_length=40)],
    reset: Annotated[Literal["daily", "weekly", "monthly", ""], Form()] = "",
) -> Response:
    """A finding's suggested limit, set at OpenRouter in one call (the worker makes it; the API answers 202)."""
    amount = parse_number(amount_usd)
    if amount is None:
        return await _hygiene_page(request, views, visitor, error="The suggested limit is not an amount.", status=422)
    body = {"amount_usd": amount, "reset": reset or None}
    try:
        await visitor.api.post(f"/api/v1/keys/{key_id}/apply-limit", body)
    except ApiProblem as exc:
        return await _hygiene_page(request, views, visitor, error=exc.detail, status=exc.status)
    return RedirectResponse("/insights/hygiene?done=limit", status_code=303)


@router.get("/insights/prices", include_in_schema=False)
async def prices(
    request: Request,
    visitor: SignedIn,
    views: Views,
    first: Annotated[Day, Query(alias="from")] = None,
    last: Annotated[Day, Query(alias="to")] = None,
    group_by: Annotated[str | None, Query(max_length=8)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    chosen = {"from": parse_day(first), "to": parse_day(last)}
    filters = {name: str(value) for name, value in chosen.items() if value}
    filters["group_by"] = group_by if group_by in insights.GROUPS else "model"
    report, keys = await asyncio.gather(
        visitor.api.get("/api/v1/insights/prices", page=page, per_page=insights.PER_PAGE, **filters),
        visitor.api.get("/api/v1/keys", per_page=250),
    )
    context = {
        "report": report,
        "rows": insights.rows(report),
        "names": {k["id"]: k["name"] for k in keys["items"]},
        "filters": filters,
        "groups": insights.GROUPS,
        "page": page,
        "pages": max(1, -(-int(report["total"]) // insights.PER_PAGE)),
        "query": lambda **change: urlencode({**filters, "page": page, **change}),
    }
    return views.render(request, "prices.html", context, visitor=visitor)


@router.get("/insights/reconciliation", include_in_schema=False)
async def reconciliation(request: Request, visitor: SignedIn, views: Views, page: Page = 1) -> Response:
    report = await visitor.api.get(RECONCILIATION, page=page, per_page=PER_PAGE)
    pages = max(1, -(-int(report["total"]) // PER_PAGE))
    context = {"report": report, "at": {"page": page, "pages": pages}}
    return views.render(request, "reconciliation.html", context, visitor=visitor)
