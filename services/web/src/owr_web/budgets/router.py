"""`/budgets`: the list with each budget's bar and outlook and the create form; edit and delete (confirmed).

Plain forms: a success redirects (`?done=` names the notice), a refusal comes back with what was typed and
each message under its field.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem
from owr_web.budgets import service
from owr_web.budgets.schemas import BudgetForm
from owr_web.dependencies import Checked, SignedIn, Views, Visitor
from owr_web.views.forms import Refusal, blame, notice
from owr_web.views.pages import Pages, deletion

router = APIRouter(tags=["budgets"])

Page = Annotated[int, Query(ge=1, le=10_000)]
Done = Annotated[str | None, Query(max_length=20)]
Typed = Annotated[BudgetForm, Form()]
NOTICES = {"created": "Budget created.", "saved": "Budget saved.", "deleted": "Budget deleted."}


def _context(form: BudgetForm, refusal: Refusal | None) -> dict[str, Any]:
    return {
        "form": form,
        "errors": refusal.fields if refusal else {},
        "error": refusal.message if refusal else None,
        "scopes": service.SCOPES,
        "periods": service.PERIODS,
    }


async def _list_page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    page: int = 1,
    form: BudgetForm | None = None,
    refusal: Refusal | None = None,
    done: str | None = None,
) -> Response:
    data = await service.listing(visitor.api, page=page)
    context = {"b": data, **_context(form or BudgetForm(), refusal), "notice": notice(done, NOTICES)}
    return views.render(request, "budgets.html", context, visitor=visitor, status=422 if refusal else 200)


@router.get("/budgets", include_in_schema=False)
async def budgets_page(
    request: Request, visitor: SignedIn, views: Views, page: Page = 1, done: Done = None
) -> Response:
    return await _list_page(request, views, visitor, page=page, done=done)


@router.post("/budgets", include_in_schema=False)
async def create_budget(request: Request, visitor: Checked, views: Views, form: Typed) -> Response:
    body, errors = service.body_of(form, creating=True)
    if errors:
        return await _list_page(request, views, visitor, form=form, refusal=Refusal(errors))
    try:
        await visitor.api.create_budget(body)
    except ApiProblem as exc:
        refusal = blame(exc, service.api_fields(form))
        return await _list_page(request, views, visitor, form=form, refusal=refusal)
    return RedirectResponse("/budgets?done=created", status_code=303)


async def _edit_page(
    request: Request, views: Pages, visitor: Visitor, budget_id: str, form: BudgetForm | None, refusal: Refusal | None
) -> Response:
    budget = await visitor.api.budget(budget_id)
    offered = await service.choices(visitor.api)
    context = {
        "budget": budget,
        "scope_label": service.scope_label(budget, offered.key_names),
        "choices": offered,
        **_context(form or service.form_of(budget), refusal),
    }
    return views.render(request, "budget_edit.html", context, visitor=visitor, status=422 if refusal else 200)


@router.get("/budgets/{budget_id}/edit", include_in_schema=False)
async def edit_page(budget_id: uuid.UUID, request: Request, visitor: SignedIn, views: Views) -> Response:
    return await _edit_page(request, views, visitor, str(budget_id), None, None)


@router.post("/budgets/{budget_id}/edit", include_in_schema=False)
async def save_budget(budget_id: uuid.UUID, request: Request, visitor: Checked, views: Views, form: Typed) -> Response:
    body, errors = service.body_of(form, creating=False)
    if errors:
        return await _edit_page(request, views, visitor, str(budget_id), form, Refusal(errors))
    try:
        await visitor.api.update_budget(str(budget_id), body)
    except ApiProblem as exc:
        return await _edit_page(request, views, visitor, str(budget_id), form, blame(exc, service.api_fields(form)))
    return RedirectResponse("/budgets?done=saved", status_code=303)


@router.get("/budgets/{budget_id}/delete", include_in_schema=False)
async def confirm_delete(budget_id: uuid.UUID, request: Request, visitor: SignedIn, views: Views) -> Response:
    budget = await visitor.api.budget(str(budget_id))
    said = "It stops watching spend and sends no more alerts. Alerts it already sent stay in the history."
    context = deletion("budget", budget["name"], said, action=f"/budgets/{budget_id}/delete", cancel="/budgets")
    return views.render(request, "confirm_delete.html", context, visitor=visitor)


@router.post("/budgets/{budget_id}/delete", include_in_schema=False)
async def delete_budget(budget_id: uuid.UUID, visitor: Checked) -> Response:
    await visitor.api.delete_budget(str(budget_id))
    return RedirectResponse("/budgets?done=deleted", status_code=303)
