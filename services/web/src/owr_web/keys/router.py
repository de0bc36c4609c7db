"""`/keys`: the table (polled while a key is pending), add, rename, activate/deactivate, sync, delete; a key's page
with its state at OpenRouter (kill switch, enable, the panic button's disable).

Every action is a plain form post that answers with a redirect, so the page works without JavaScript;
htmx posts the same forms and gets the keys section back instead (`HX-Request`), swapped in place.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, SignedIn, Views, Visitor
from owr_web.keys import service
from owr_web.views.forms import notice
from owr_web.views.pages import Pages, deletion

router = APIRouter(tags=["keys"])

KeyName = Annotated[str, Form(min_length=1, max_length=100)]


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


Page = Annotated[int, Query(ge=1, le=10_000)]


async def _section(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    page: int = 1,
) -> Response:
    """The keys section (htmx) or the whole page, with the form's outcome."""
    data = await service.table(visitor.api, page=page)
    context: dict[str, Any] = {"t": data, "error": error, "notice": notice}
    template = "_keys_section.html" if _is_htmx(request) else "keys.html"
    return views.render(request, template, context, visitor=visitor, status=status)


@router.get("/keys", include_in_schema=False)
async def keys_page(request: Request, visitor: SignedIn, views: Views, page: Page = 1) -> Response:
    return await _section(request, views, visitor, page=page)


@router.get("/keys/table", include_in_schema=False)
async def keys_table(request: Request, visitor: SignedIn, views: Views, page: Page = 1) -> Response:
    """The table alone: what the page polls while a key is pending, so it turns valid before the eyes."""
    data = await service.table(visitor.api, page=page)
    return views.render(request, "_keys_table.html", {"t": data}, visitor=visitor)


@router.post("/keys", include_in_schema=False)
async def add_key(
    request: Request, visitor: Checked, views: Views, name: KeyName, key: Annotated[str, Form(max_length=512)]
) -> Response:
    """Store a key; the secret is sent on to the API and never shown back, not even after an error."""
    try:
        created = await visitor.api.post("/api/v1/keys", {"name": name.strip(), "key": key.strip()})
    except ApiProblem as exc:
        message = exc.detail
        if exc.errors:
            message = "; ".join(str(e.get("msg", "")) for e in exc.errors if e.get("msg")) or message
        return await _section(request, views, visitor, error=message, status=exc.status)
    notice = f"Key \u201c{created['name']}\u201d added; its first sync is on its way."
    return (
        await _section(request, views, visitor, notice=notice) if _is_htmx(request) else RedirectResponse("/keys", 303)
    )


async def _act(
    request: Request, views: Pages, visitor: Visitor, method: str, path: str, body: Any, notice: str
) -> Response:
    try:
        await visitor.api.request(method, path, json_body=body)
    except ApiProblem as exc:
        # Shown where the person acted (htmx swaps 4xx answers in: base.html's htmx-config).
        return await _section(request, views, visitor, error=exc.detail, status=exc.status)
    if _is_htmx(request):
        return await _section(request, views, visitor, notice=notice)
    return RedirectResponse("/keys", status_code=303)


@router.post("/keys/{key_id}/sync", include_in_schema=False)
async def sync_key(key_id: uuid.UUID, request: Request, visitor: Checked, views: Views) -> Response:
    return await _act(request, views, visitor, "POST", f"/api/v1/keys/{key_id}/sync", None, "Sync requested.")


@router.post("/keys/{key_id}/active", include_in_schema=False)
async def set_active(
    key_id: uuid.UUID, request: Request, visitor: Checked, views: Views, active: Annotated[bool, Form()]
) -> Response:
    notice = "Key activated." if active else "Key deactivated: it is no longer synced."
    return await _act(request, views, visitor, "PATCH", f"/api/v1/keys/{key_id}", {"is_active": active}, notice)


@router.post("/keys/{key_id}/rename", include_in_schema=False)
async def rename(key_id: uuid.UUID, request: Request, visitor: Checked, views: Views, name: KeyName) -> Response:
    return await _act(
        request, views, visitor, "PATCH", f"/api/v1/keys/{key_id}", {"name": name.strip()}, "Key renamed."
    )


@router.get("/keys/{key_id}/delete", include_in_schema=False)
async def confirm_delete(key_id: uuid.UUID, request: Request, visitor: SignedIn, views: Views) -> Response:
    """The confirmation step without JavaScript (htmx asks with `hx-confirm` instead)."""
    key = await visitor.api.get(f"/api/v1/keys/{key_id}")
    said = f"The key {key['label']} and its ciphertext are deleted. Its spend stays in the usage figures."
    context = deletion("key", key["name"], said, action=f"/keys/{key_id}/delete", cancel="/keys")
    return views.render(request, "confirm_delete.html", context, visitor=visitor)


@router.post("/keys/{key_id}/delete", include_in_schema=False)
async def delete_key(key_id: uuid.UUID, request: Request, visitor: Checked, views: Views) -> Response:
    return await _act(request, views, visitor, "DELETE", f"/api/v1/keys/{key_id}", None, "Key deleted.")


KEY_NOTICES = {
    "enabled": "Asked: the key is enabled at OpenRouter again within moments.",
    "disabled": "Asked: the key is disabled at OpenRouter within moments; the changes below say when it is done.",
    "switch": "Kill switch on anomalies saved.",
}


@router.get("/keys/{key_id}", include_in_schema=False)
async def key_page(
    key_id: uuid.UUID,
    request: Request,
    visitor: SignedIn,
    views: Views,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    data = await service.detail(visitor.api, str(key_id))
    return views.render(request, "key.html", {"k": data, "notice": notice(done, KEY_NOTICES)}, visitor=visitor)


async def _key_refusal(
    request: Request, views: Pages, visitor: Visitor, key_id: uuid.UUID, exc: ApiProblem
) -> Response:
    data = await service.detail(visitor.api, str(key_id))
    return views.render(request, "key.html", {"k": data, "error": exc.detail}, visitor=visitor, status=exc.status)


@router.post("/keys/{key_id}/kill-switch", include_in_schema=False)
async def kill_switch(
    key_id: uuid.UUID,
    request: Request,
    visitor: Checked,
    views: Views,
    anomaly_score: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The key's anomaly threshold (empty: off); the API judges the number."""
    score = anomaly_score.strip() or None
    try:
        await visitor.api.request("PUT", f"/api/v1/keys/{key_id}/kill-switch", json_body={"anomaly_score": score})
    except ApiProblem as exc:
        return await _key_refusal(request, views, visitor, key_id, exc)
    return RedirectResponse(f"/keys/{key_id}?done=switch", status_code=303)


@router.post("/keys/{key_id}/enable-upstream", include_in_schema=False)
async def enable_upstream(key_id: uuid.UUID, request: Request, visitor: Checked, views: Views) -> Response:
    """Undo the kill switch: the worker enables the key at OpenRouter (the API says 202 at once)."""
    try:
        await visitor.api.post(f"/api/v1/keys/{key_id}/enable-upstream")
    except ApiProblem as exc:
        return await _key_refusal(request, views, visitor, key_id, exc)
    return RedirectResponse(f"/keys/{key_id}?done=enabled", status_code=303)


@router.post("/keys/{key_id}/disable-upstream", include_in_schema=False)
async def disable_upstream(
    key_id: uuid.UUID,
    request: Request,
    visitor: Checked,
    views: Views,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The panic button: the worker disables the key at OpenRouter (202 at once). A key disabled or being
    disabled already, or not linked to an account, is the API's 409, said on the page."""
    words = reason.strip()
    try:
        await visitor.api.post(f"/api/v1/keys/{key_id}/disable-upstream", {"reason": words} if words else None)
    except ApiProblem as exc:
        return await _key_refusal(request, views, visitor, key_id, exc)
    return RedirectResponse(f"/keys/{key_id}?done=disabled", status_code=303)
