"""`/alerts`: the alert history (paginated), and `/alerts/rules`: the built-in rules' switches and parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from owr_web.alerts import service
from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, SignedIn, Views, Visitor
from owr_web.views.forms import Refusal, blame, notice
from owr_web.views.pages import Pages

router = APIRouter(tags=["alerts"])

Page = Annotated[int, Query(ge=1, le=10_000)]
Done = Annotated[str | None, Query(max_length=20)]
NOTICES = {"saved": "Alert rules saved."}


@router.get("/alerts", include_in_schema=False)
async def alerts_page(request: Request, visitor: SignedIn, views: Views, page: Page = 1) -> Response:
    data = await service.history(visitor.api, page=page)
    return views.render(request, "alerts.html", {"a": data}, visitor=visitor)


async def _rules_page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    rules: list[dict[str, Any]] | None = None,
    refusal: Refusal | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    if rules is None:
        rules = service.rule_items(await visitor.api.alert_rules())
    context = {
        "rules": service.rule_fields(rules),
        "errors": refusal.fields if refusal else {},
        "error": refusal.message if refusal else None,
        "notice": notice(done, NOTICES),
    }
    return views.render(request, "alert_rules.html", context, visitor=visitor, status=status)


@router.get("/alerts/rules", include_in_schema=False)
async def rules_page(request: Request, visitor: SignedIn, views: Views, done: Done = None) -> Response:
    return await _rules_page(request, views, visitor, done=done)


@router.post("/alerts/rules", include_in_schema=False)
async def save_rules(request: Request, visitor: Checked, views: Views) -> Response:
    """The whole set at once: each switch and parameter as the form has it (read as the type it had)."""
    current = service.rule_items(await visitor.api.alert_rules())
    changed, errors = service.read_rules(current, await request.form())
    if errors:
        return await _rules_page(request, views, visitor, rules=changed, refusal=Refusal(errors), status=422)
    try:
        await visitor.api.put_alert_rules({"items": changed})
    except ApiProblem as exc:
        refusal = blame(exc, service.rule_api_fields(changed))
        return await _rules_page(request, views, visitor, rules=changed, refusal=refusal, status=exc.status)
    return RedirectResponse("/alerts/rules?done=saved", status_code=303)
