"""Schemathesis over auth's OpenAPI (the harness: tests/support/fuzz.py). Every call carries a fresh
user's access token, so the authenticated operations get past authentication."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import given

from owr_auth.app import create_app
from owr_auth.settings import AuthSettings
from tests.auth.conftest import PASSWORD, make_settings, peer_settings
from tests.auth.peer_stub import PeerStub
from tests.support import fuzz
from tests.support.http import bearer


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
    yield from fuzz.serve(app)


def fresh_user_headers(app: FastAPI) -> dict[str, str]:
    """A new user's access token."""
    email = f"fuzz.{secrets.token_hex(6)}@example.com"
    with fuzz.seed_client(app) as client:
        r = client.post("http://testserver/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = client.post("http://testserver/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return bearer(r.json()["access_token"])


@pytest.fixture
def auth_headers(fuzz_app: FastAPI) -> dict[str, str]:
    return fresh_user_headers(fuzz_app)


schema = fuzz.openapi_schema(create_app(AuthSettings(OWR_ENV="test")))


@schema.parametrize()
@fuzz.fuzz_settings(max_examples=30)
def test_auth_api_has_no_server_errors(case: Any, fuzz_app: FastAPI, auth_headers: dict[str, str]) -> None:
    fuzz.call_and_validate(case, fuzz_app, auth_headers)


@given(before=fuzz.sequences(schema), after=fuzz.sequences(schema))
@fuzz.fuzz_settings(max_examples=15)
def test_a_user_deleted_mid_sequence_never_gets_a_server_error(
    before: list[Any], after: list[Any], fuzz_app: FastAPI
) -> None:
    """Stateful: one user's calls, the account deleted between two runs of them; the calls after it (the
    JWT still unexpired) get 401s and 404s, never a 5xx (the schemathesis finding of the hardening issue)."""
    headers = fresh_user_headers(fuzz_app)
    fuzz.run_sequence(before, fuzz_app, lambda case: headers)
    with fuzz.seed_client(fuzz_app) as client:
        r = client.delete("http://testserver/api/v1/auth/me", headers=headers)
    # 401 when a fuzzed call already deleted the account, or signed out everywhere, or changed the password.
    assert r.status_code in (204, 401), r.text
    fuzz.run_sequence(after, fuzz_app, lambda case: headers)
