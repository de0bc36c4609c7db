"""One OpenAPI document for the whole public API, merged from the services' own, and a page to try it.

Each service documents its routes (FastAPI's `/openapi.json`); the gateway keeps the paths its routing
table exposes — never `/internal/*`, health or metrics — adds the two ways to authenticate (a session's
access JWT, a personal API token) and the answers only the gateway gives (429, 502, 503, 504), and
serves the result at `/api/v1/openapi.json`, cached for a minute. `/docs` (`owr_gateway.docs`) is Swagger UI on that document.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from owr_gateway.routing import RouteTable
from owr_shared.logging import get_logger
from owr_shared.schemas import ProblemDetail

log = get_logger("owr.gateway.openapi")

OPENAPI_PATH = "/api/v1/openapi.json"
CACHE_SECONDS = 60.0
_SCHEMA_REF = "#/components/schemas/"
_PROBLEM = {"$ref": f"{_SCHEMA_REF}ProblemDetail"}
_GATEWAY_ANSWERS = {
    "429": "Rate limit exhausted (`Retry-After` says when to come back)",
    "502": "An upstream service failed mid-request",
    "503": "A dependency is unavailable or busy; retry after `Retry-After`",
    "504": "An upstream service did not answer in time",
}
SECURITY_SCHEMES = {
    "sessionJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access token of a signed-in session (`POST /api/v1/auth/login`), valid 15 minutes.",
    },
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token (`owr_…`, `POST /api/v1/tokens`); it may do what its scopes name.",
    },
}


class OpenApiUnavailable(Exception):
    """A service's document could not be fetched."""


def merge(documents: Mapping[str, dict[str, Any]], routes: RouteTable) -> dict[str, Any]:
    """The public document: the exposed paths of each service, their schemas, the security schemes."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for service, document in documents.items():
        document = _rename_conflicts(service, document, schemas)
        for path, item in document.get("paths", {}).items():
            route = routes.match(path)
            if route is None or route.upstream != service:
                continue  # /internal, health, metrics, or a path the table does not send to this service
            paths[path] = _with_gateway_answers(item, requires_token=route.requires_jwt)
        schemas.update(document.get("components", {}).get("schemas", {}))
    schemas["ProblemDetail"] = ProblemDetail.model_json_schema()
    schemas = _reachable(paths, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenRouter Watcher API",
            "version": "1",
            "description": (
                "Every OpenRouter key you hold, its exact daily spend, models, limits and balances. Errors are "
                "RFC 9457 problem details; lists are pages (`page`, `per_page` up to 250); money is exact USD."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": SECURITY_SCHEMES},
    }


def _reachable(paths: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """The schemas the public paths refer to, directly or through other schemas (internal ones go)."""
    keep: set[str] = set()
    pending = _refs(paths)
    while pending:
        name = pending.pop()
        if name in keep or name not in schemas:
            continue
        keep.add(name)
        pending |= _refs(schemas[name])
    return {name: schemas[name] for name in keep}


def _refs(node: Any) -> set[str]:
    text = json.dumps(node)
    return {part.split('"', 1)[0] for part in text.split(f'"$ref": "{_SCHEMA_REF}')[1:]}


def _rename_conflicts(service: str, document: dict[str, Any], merged: Mapping[str, Any]) -> dict[str, Any]:
    """Schemas named alike but shaped differently in two services get the service's name as a prefix."""
    own = document.get("components", {}).get("schemas", {})
    clashes = [name for name, schema in own.items() if name in merged and merged[name] != schema]
    if not clashes:
        return document
    text = json.dumps(document)
    for name in clashes:
        text = text.replace(f'"{_SCHEMA_REF}{name}"', f'"{_SCHEMA_REF}{service.title()}{name}"')
    renamed: dict[str, Any] = json.loads(text)
    schemas = renamed["components"]["schemas"]
    for name in clashes:
        schemas[f"{service.title()}{name}"] = schemas.pop(name)
    return renamed


def _with_gateway_answers(item: dict[str, Any], *, requires_token: bool) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for operation in item.values():
        if not isinstance(operation, dict) or "responses" not in operation:
            continue
        operation["security"] = [{"sessionJwt": []}, {"apiToken": []}] if requires_token else []
        responses = operation["responses"]
        if requires_token:
            responses.setdefault("401", _problem("The access token or API token is missing, invalid or revoked"))
        for status, description in _GATEWAY_ANSWERS.items():
            responses.setdefault(status, _problem(description))
    return item


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM}}}


class OpenApiDocument:
    """Fetches the services' documents, merges them, and keeps the result for a minute."""

    def __init__(self, sessions: Mapping[str, aiohttp.ClientSession], bases: Mapping[str, str], routes: RouteTable):
        self._sessions = sessions
        self._bases = bases
        self._routes = routes
        self._body: bytes | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def body(self) -> bytes:
        if self._body is not None and time.monotonic() - self._fetched_at < CACHE_SECONDS:
            return self._body
        async with self._lock:  # one refresh at a time; the others wait for it
            if self._body is None or time.monotonic() - self._fetched_at >= CACHE_SECONDS:
                documents = {name: await self._fetch(name) for name in self._bases}
                self._body = orjson.dumps(merge(documents, self._routes))
                self._fetched_at = time.monotonic()
        return self._body

    async def _fetch(self, service: str) -> dict[str, Any]:
        url = f"{self._bases[service]}/openapi.json"
        try:
            async with self._sessions[service].get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    raise OpenApiUnavailable(f"{service} answered {response.status}")
                document: dict[str, Any] = orjson.loads(await response.read())
                return document
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.warning("openapi_fetch_failed", upstream=service, error_type=type(exc).__name__)
            raise OpenApiUnavailable(service) from exc
