"""`/accounts`: one API call, every account with its balance and key list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from owr_web.dependencies import SignedIn, Views

router = APIRouter(tags=["accounts"])


@router.get("/accounts", include_in_schema=False)
async def accounts(request: Request, visitor: SignedIn, views: Views) -> Response:
    page = await visitor.api.get("/api/v1/usage/accounts", per_page=250)
    return views.render(request, "accounts.html", {"accounts": page["items"]}, visitor=visitor)
