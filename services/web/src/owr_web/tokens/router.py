"""`/tokens`: list, create (the value is shown once, on the answer to the creating post), revoke."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, SignedIn, Views, Visitor
from owr_web.views.pages import Pages

router = APIRouter(tags=["tokens"])

SCOPES = {
    "usage:read": "Read usage figures",
    "keys:read": "Read keys (masked)",
    "keys:write": "Add, change and delete keys",
    "keys:sync": "Start syncs",
    "alerts:read": "Read budgets, channels and alerts",
    "alerts:write": "Manage budgets, channels and alert rules",
}
EXPIRIES = (30, 90, 180, 365)


async def _page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    created: Any = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    tokens = await visitor.api.get("/api/v1/tokens")
    context = {"tokens": tokens["items"], "created": created, "error": error, "scopes": SCOPES, "expiries": EXPIRIES}
    # The page with a new token's value is never stored anywhere (no-store is on every page already).
    return views.render(request, "tokens.html", context, visitor=visitor, status=status)


@router.get("/tokens", include_in_schema=False)
async def tokens_page(request: Request, visitor: SignedIn, views: Views) -> Response:
    return await _page(request, views, visitor)


@router.post("/tokens", include_in_schema=False)
async def create_token(
    request: Request,
    visitor: Checked,
    views: Views,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    expires_in_days: Annotated[int, Form(ge=1, le=365)] = 90,
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    chosen = [scope for scope in scopes or [] if scope in SCOPES] or ["usage:read", "keys:read"]
    body = {"name": name.strip(), "scopes": chosen, "expires_in_days": expires_in_days}
    try:
        created = await visitor.api.post("/api/v1/tokens", body)
    except ApiProblem as exc:
        return await _page(request, views, visitor, error=exc.detail, status=exc.status)
    return await _page(request, views, visitor, created=created, status=201)


@router.post("/tokens/{token_id}/revoke", include_in_schema=False)
async def revoke(token_id: uuid.UUID, visitor: Checked) -> Response:
    await visitor.api.delete(f"/api/v1/tokens/{token_id}")
    return RedirectResponse("/tokens", status_code=303)
