"""Schemathesis over the usage OpenAPI (the harness: tests/support/fuzz.py).

Public routes get a real access token, internal routes a service token with every usage scope. A few
snapshots are stored first so some generated ids can be real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from hypothesis import given

from owr_usage.app import create_app
from owr_usage.settings import UsageSettings
from tests.support import fuzz
from tests.support.http import bearer
from tests.support.tokens import TestKeyring
from tests.usage.conftest import make_settings

FUZZ_USER, FUZZ_WORKSPACE = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture(scope="module")
def fuzz_app(database_url: str, redis_url: str, keyring: TestKeyring) -> Iterator[FastAPI]:
    app = create_app(make_settings(database_url, redis_url), jwks_fetcher=keyring.fetch)
    now = datetime.now(UTC)
    items = [
        {
            "key_id": str(uuid.uuid4()),
            "workspace_id": FUZZ_WORKSPACE,
            "observed_at": (now - timedelta(days=i)).isoformat(),
            "snapshot": {"label": "sk-or-v1-fuz...zed", "usage": 1 + i, "usage_daily": 0.5},
        }
        for i in range(3)
    ]
    with fuzz.seed_client(app) as client:
        r = client.post(
            "http://testserver/internal/snapshots",
            headers={**bearer(keyring.service_token()), "content-type": "application/json"},
            data=orjson.dumps({"items": items}),
        )
        assert r.status_code == 200, r.text
    yield from fuzz.serve(app)


schema = fuzz.openapi_schema(create_app(UsageSettings(OWR_ENV="test")))


@schema.parametrize()
@fuzz.fuzz_settings(max_examples=40)
def test_usage_api_has_no_server_errors(case: Any, fuzz_app: FastAPI, keyring: TestKeyring) -> None:
    fuzz.call_and_validate(case, fuzz_app, fuzz.tenant_or_service_headers(case, keyring, FUZZ_USER, FUZZ_WORKSPACE))


@given(before=fuzz.sequences(schema), after=fuzz.sequences(schema))
@fuzz.fuzz_settings(max_examples=15)
def test_a_workspace_erased_mid_sequence_never_gets_a_server_error(
    before: list[Any], after: list[Any], fuzz_app: FastAPI, keyring: TestKeyring
) -> None:
    """Stateful: one tenant's calls, its workspace erased between two runs of them (an account deletion
    while its JWT is still unexpired); every call after it is refused or finds nothing, never a 5xx."""
    fuzz.erase_mid_sequence(before, after, fuzz_app, keyring)
