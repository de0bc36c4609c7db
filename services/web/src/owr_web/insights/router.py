"""`/insights/hygiene`: one API call, the workspace's key hygiene findings grouped by kind."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, SignedIn, Views, Visitor
from owr_web.views.forms import notice
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


NOTICES = {"limit": "Asked: the suggested limit is set at OpenRouter within moments (see the key's page)."}


async def _page(
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
    context = {"sections": sections, "notice": notice(done, NOTICES), "error": error}
    return views.render(request, "hygiene.html", context, visitor=visitor, status=status)


@router.get("/insights/hygiene", include_in_schema=False)
async def hygiene(
    request: Request, visitor: SignedIn, views: Views, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    return await _page(request, views, visitor, done=done)


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
    try:
        amount = Decimal(amount_usd)
    except InvalidOperation:
        return await _page(request, views, visitor, error="The suggested limit is not an amount.", status=422)
    body = {"amount_usd": amount, "reset": reset or None}
    try:
        await visitor.api.post(f"/api/v1/keys/{key_id}/apply-limit", body)
    except ApiProblem as exc:
        return await _page(request, views, visitor, error=exc.detail, status=exc.status)
    return RedirectResponse("/insights/hygiene?done=limit", status_code=303)
