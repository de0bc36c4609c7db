"""Schemathesis over auth's OpenAPI: no 5xx, and every response conforms to the schema.

The schema is read from an app that is never started (`schemathesis.pytest.from_fixture` does not work
with pytest 9); the calls go to `fuzz_app`, which runs in schemathesis' own ASGI event loop on the
session's database. Rows it creates are committed, under random emails.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from owr_auth.app import create_app
from owr_auth.settings import AuthSettings
from tests.auth.conftest import PASSWORD, make_settings, peer_settings
from tests.auth.peer_stub import PeerStub

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, redis_url: str, keys_server: PeerStub) -> Iterator[FastAPI]:
    # Throttling stays on, with limits the fuzzer's failed logins do not reach before the fixture logs in.
    # Account deletion reaches the keys stub (204), so a fuzzed DELETE /me succeeds rather than 503.
    app = create_app(
        make_settings(
            database_url,
            redis_url,
            login_max_failures_per_ip=100_000,
            login_max_failures_per_account=1000,
            **peer_settings(keys_server.url),
        )
    )
    yield app
    # Stop the lifespan schemathesis started, so the engine's connections close before the DB is dropped.
    asgi.shutdown_lifespans()


@pytest.fixture
def auth_headers(fuzz_app: FastAPI) -> dict[str, str]:
    """A fresh user's access token, so the authenticated operations get past authentication."""
    email = f"fuzz.{secrets.token_hex(6)}@example.com"
    with asgi.get_client(fuzz_app) as client:
        r = client.post("http://testserver/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = client.post("http://testserver/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


# Only its OpenAPI document is used; requests go to `fuzz_app` (the `app=` argument below).
_document_app = create_app(AuthSettings(OWR_ENV="test"))
schema = schemathesis.openapi.from_dict(_document_app.openapi())
schema.app = _document_app


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_auth_api_has_no_server_errors(case, fuzz_app, auth_headers):
    case.call_and_validate(app=fuzz_app, headers=auth_headers, checks=CHECKS)
