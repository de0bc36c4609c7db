"""`/`: the dashboard, and its tiles as a fragment the page polls while a sync is pending."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from owr_web.dashboard import service
from owr_web.dependencies import SignedIn, Views

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
async def dashboard(request: Request, visitor: SignedIn, views: Views) -> Response:
    data = await service.load(visitor.api)
    # Numbers for the chart as strings: exact in the page, parsed by the chart script.
    chart = json.dumps(data.chart)
    return views.render(request, "dashboard.html", {"d": data, "chart_json": chart}, visitor=visitor)


@router.get("/fragments/tiles", include_in_schema=False)
async def tiles(request: Request, visitor: SignedIn, views: Views) -> Response:
    data = await service.load(visitor.api)
    return views.render(request, "_tiles.html", {"d": data}, visitor=visitor)
