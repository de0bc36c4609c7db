"""Schemathesis over the keys OpenAPI (the harness: tests/support/fuzz.py).

Public routes get a real access token, internal routes a real service token with every scope, so the
fuzzer gets past authentication. A few keys are stored first, so some generated ids can be real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import given

from owr_keys.app import create_app
from owr_keys.settings import KeysSettings
from tests.keys.conftest import make_settings, new_secret
from tests.support import fuzz
from tests.support.http import bearer
from tests.support.tokens import TestKeyring

FUZZ_USER, FUZZ_WORKSPACE = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, redis_url: str, keyring: TestKeyring) -> Iterator[FastAPI]:
    app = create_app(make_settings(database_url, redis_url), jwks_fetcher=keyring.fetch)
    with fuzz.seed_client(app) as client:
        for i in range(3):
            r = client.post(
                "http://testserver/api/v1/keys",
                headers=bearer(keyring.access_token(FUZZ_USER, FUZZ_WORKSPACE)),
                json={"name": f"fuzz {i}", "key": new_secret()},
            )
            assert r.status_code == 201, r.text
    yield from fuzz.serve(app)


schema = fuzz.openapi_schema(create_app(KeysSettings(OWR_ENV="test")))


@schema.parametrize()
@fuzz.fuzz_settings(max_examples=25)
def test_keys_api_has_no_server_errors(case: Any, fuzz_app: FastAPI, keyring: TestKeyring) -> None:
    fuzz.call_and_validate(case, fuzz_app, fuzz.tenant_or_service_headers(case, keyring, FUZZ_USER, FUZZ_WORKSPACE))


@given(before=fuzz.sequences(schema), after=fuzz.sequences(schema))
@fuzz.fuzz_settings(max_examples=15)
def test_a_workspace_erased_mid_sequence_never_gets_a_server_error(
    before: list[Any], after: list[Any], fuzz_app: FastAPI, keyring: TestKeyring
) -> None:
    """Stateful: one tenant's calls, its workspace erased between two runs of them (an account deletion
    while its JWT is still unexpired); every call after it is refused or finds nothing, never a 5xx."""
    fuzz.erase_mid_sequence(before, after, fuzz_app, keyring)
