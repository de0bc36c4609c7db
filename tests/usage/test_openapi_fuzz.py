"""Schemathesis over the usage OpenAPI: no 5xx, and every response conforms to the schema.

As for keys: the schema comes from an app that is never started, the calls go to `fuzz_app` (run in
schemathesis' own ASGI event loop on the session's database). Public routes get a real access token,
internal routes a service token with every usage scope. A few keys are stored first so some generated
ids can be real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
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

from owr_usage.app import create_app
from owr_usage.settings import UsageSettings
from tests.support.tokens import TestKeyring, bearer
from tests.usage.conftest import make_settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
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
    with asgi.get_client(app) as client:
        r = client.post(
            "http://testserver/internal/snapshots",
            headers={**bearer(keyring.service_token()), "content-type": "application/json"},
            data=orjson.dumps({"items": items}),
        )
        assert r.status_code == 200, r.text
    yield app
    # Stop the lifespan schemathesis started, so the engine's connections close before the DB is dropped.
    asgi.shutdown_lifespans()


# Only its OpenAPI document is used; requests go to `fuzz_app` (the `app=` argument below).
_document_app = create_app(UsageSettings(OWR_ENV="test"))
schema = schemathesis.openapi.from_dict(_document_app.openapi())
schema.app = _document_app


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_usage_api_has_no_server_errors(case, fuzz_app, keyring):
    # Tokens are minted per call: a long run must not outlive them.
    if case.path.startswith("/internal/"):
        headers = bearer(keyring.service_token())
    else:
        headers = bearer(keyring.access_token(FUZZ_USER, FUZZ_WORKSPACE))
    case.call_and_validate(app=fuzz_app, headers=headers, checks=CHECKS)
