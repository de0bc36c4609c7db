"""The page renderer: Jinja2 with autoescaping, the format filters, and the content-hashed assets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from owr_web.views.format import FILTERS
from owr_web.views.nav import NAV, section_of

if TYPE_CHECKING:
    from owr_web.dependencies import Visitor

PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
MANIFEST = STATIC / "dist" / "manifest.json"
# Pages carry one person's figures: no cache may keep them.
PAGE_HEADERS = {"Cache-Control": "no-store"}


def load_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """Logical asset name → hashed file name (built by `python -m tools.web_assets`, run by `make install`)."""
    try:
        manifest: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"the web assets are not built ({path} is missing): run `make install`") from None
    return manifest


def deletion(noun: str, name: str, consequence: str, *, action: str, cancel: str) -> dict[str, str]:
    """The context of `confirm_delete.html`: the step that asks before a delete, without JavaScript."""
    return {"noun": noun, "name": name, "consequence": consequence, "action": action, "cancel": cancel}


class Pages:
    def __init__(self, manifest: dict[str, str], *, live_poll_seconds: int) -> None:
        self._manifest = manifest
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)
        self.env.globals.update(asset=self.asset, live_poll_seconds=live_poll_seconds, nav=NAV)

    def asset(self, name: str) -> str:
        return f"/static/dist/{self._manifest[name]}"

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        visitor: Visitor | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        csrf_token: str | None = None,
    ) -> HTMLResponse:
        """A page (or, for an htmx request naming a fragment template, that fragment) for `visitor`."""
        values = {
            "request_path": request.url.path,
            # The header entry marked current, and the tabs (`_section_nav.html`) of a section of several pages.
            "nav_section": section_of(request.url.path),
            "email": visitor.session.email if visitor else None,
            # The workspace the pages act in, the role there (actions a role cannot take are hidden) and
            # the person's workspaces (the header's switcher).
            "session": visitor.session if visitor else None,
            "email_verified": visitor.session.email_verified if visitor else True,
            "csrf_token": visitor.session.csrf_token if visitor else csrf_token or "",
            "htmx": request.headers.get("hx-request") == "true",
            **(context or {}),
        }
        html = self.env.get_template(template).render(values)
        return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
