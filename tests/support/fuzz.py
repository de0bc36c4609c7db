"""One schemathesis harness: no 5xx, and every response conforms to the service's OpenAPI document.

The schema is read from an app that is never started (`schemathesis.pytest.from_fixture` does not work
with pytest 9); the calls go to a module's `fuzz_app`, which runs in schemathesis' own ASGI event loop
on the session's database. Rows it creates are committed, under random workspaces or emails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.http import bearer
from tests.support.tokens import TestKeyring

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
F = TypeVar("F", bound=Callable[..., Any])


def openapi_schema(document_app: FastAPI) -> Any:
    """The parametrizable schema of an app that is only read (requests go to `fuzz_app`)."""
    schema = schemathesis.openapi.from_dict(document_app.openapi())
    schema.app = document_app
    return schema


def fuzz_settings(max_examples: int) -> Callable[[F], F]:
    decorate: Callable[[F], F] = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    return decorate


def serve(app: FastAPI) -> Iterator[FastAPI]:
    """The body of a module-scoped `fuzz_app` fixture, once the app is seeded."""
    yield app
    # Stop the lifespan schemathesis started, so the engine's connections close before the DB is dropped.
    asgi.shutdown_lifespans()


def seed_client(app: FastAPI) -> Any:
    """A synchronous client of `app` in schemathesis' event loop (starts its lifespan), for seeding."""
    return asgi.get_client(app)


def tenant_or_service_headers(case: Any, keyring: TestKeyring, user_id: str, workspace_id: str) -> dict[str, str]:
    """A service token with every scope for internal routes, the tenant's access token for public ones.

    Minted per call: a long run must not outlive them.
    """
    if case.path.startswith("/internal/"):
        return bearer(keyring.service_token())
    return bearer(keyring.access_token(user_id, workspace_id))


def call_and_validate(case: Any, app: FastAPI, headers: dict[str, str]) -> None:
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)


def sequences(schema: Any, *, max_size: int = 5) -> st.SearchStrategy[list[Any]]:
    """Runs of calls to any of the schema's operations, for stateful tests: the same tenant calls them in
    order, with the account or workspace deleted between two runs (see each suite's fuzz test)."""
    operations = [result.ok().as_strategy() for result in schema.get_all_operations()]
    return st.lists(st.one_of(operations), min_size=1, max_size=max_size)


def run_sequence(cases: list[Any], app: FastAPI, headers: Callable[[Any], dict[str, str]]) -> None:
    """Call and validate each case in order (no 5xx, every answer as documented)."""
    for case in cases:
        call_and_validate(case, app, headers(case))


def erase_mid_sequence(before: list[Any], after: list[Any], app: FastAPI, keyring: TestKeyring) -> None:
    """A fresh tenant runs `before`, its workspace is erased (as an account deletion does), then it runs
    `after` with its still unexpired token; `run_sequence` checks every answer."""
    user, workspace = str(uuid.uuid4()), str(uuid.uuid4())

    def headers(case: Any) -> dict[str, str]:
        return tenant_or_service_headers(case, keyring, user, workspace)

    run_sequence(before, app, headers)
    with seed_client(app) as client:
        r = client.delete(f"http://testserver/internal/workspaces/{workspace}", headers=bearer(keyring.service_token()))
    assert r.status_code == 204, r.text
    run_sequence(after, app, headers)
