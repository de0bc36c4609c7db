"""`/stats` and `/stats/export` (the API's CSV or JSON, streamed through web: the browser holds no token)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from owr_web.api.errors import ApiProblem, ApiUnavailable, PageNotFound
from owr_web.dependencies import Day, SignedIn, Views, parse_day
from owr_web.sessions.errors import SignedOut

router = APIRouter(tags=["stats"])

PER_PAGE = 50
SORTS = {
    "-date": "Newest first",
    "date": "Oldest first",
    "-cost": "Cost, highest first",
    "cost": "Cost, lowest first",
    "model": "Model",
    "provider": "Provider",
    "-requests": "Requests, most first",
}
Text = Annotated[str | None, Query(max_length=300)]


async def _filters(
    first: Annotated[Day, Query(alias="from")] = None,
    last: Annotated[Day, Query(alias="to")] = None,
    key_id: Text = None,
    model: Text = None,
    provider: Text = None,
    sort: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, str]:
    """The filters of the page and of its exports, as the API takes them (empty fields left out)."""
    chosen = {"from": parse_day(first), "to": parse_day(last), "key_id": key_id, "model": model, "provider": provider}
    values = {name: str(value) for name, value in chosen.items() if value}
    values["sort"] = sort if sort in SORTS else "-date"
    return values


Filters = Annotated[dict[str, str], Depends(_filters)]


@router.get("/stats", include_in_schema=False)
async def stats(
    request: Request,
    visitor: SignedIn,
    views: Views,
    filters: Filters,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    rows, keys = await asyncio.gather(
        visitor.api.get_optional("/api/v1/usage/daily", page=page, per_page=PER_PAGE, **filters),
        visitor.api.get("/api/v1/keys", per_page=250),
    )
    rows = rows or {"items": [], "total": 0, "page": page, "per_page": PER_PAGE}
    names = {k["id"]: k["name"] for k in keys["items"]}
    pages = max(1, -(-int(rows["total"]) // PER_PAGE))
    context: dict[str, Any] = {
        "rows": rows,
        "names": names,
        "keys": keys["items"],
        "filters": filters,
        "sorts": SORTS,
        "page": page,
        "pages": pages,
        "query": lambda **change: urlencode({**filters, "page": page, **change}),
        "export": lambda fmt: "/stats/export?" + urlencode({**filters, "format": fmt}),
    }
    return views.render(request, "stats.html", context, visitor=visitor)


@router.get("/stats/export", include_in_schema=False)
async def export(visitor: SignedIn, filters: Filters, format: Literal["csv", "json"] = "csv") -> Response:
    """The API's export, streamed to the browser as it comes (a year of rows never sits in web's memory)."""
    params = {**filters, "format": format}
    upstream = await visitor.api.stream("GET", "/api/v1/usage/export", params=params)
    if upstream.status_code == 401:
        await upstream.aclose()
        raise SignedOut()
    if upstream.status_code != 200:
        await upstream.aclose()
        if upstream.status_code == 404:
            raise PageNotFound()
        if 400 <= upstream.status_code < 500:
            raise ApiProblem(upstream.status_code, {"detail": "The export's filters are not valid; check them."})
        raise ApiUnavailable()
    headers = {
        name: upstream.headers[name] for name in ("content-type", "content-disposition") if name in upstream.headers
    }

    async def body() -> Any:
        try:
            async for chunk in upstream.aiter_bytes():
                yield chunk
        finally:
            await upstream.aclose()

    return StreamingResponse(body(), headers={**headers, "Cache-Control": "no-store"})
