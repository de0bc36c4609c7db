"""Tenants of the keys and usage suites: a user in a fresh random workspace, with a token for it.

Registered as a plugin (tests/conftest.py); the fixtures need the suite's `keyring` fixture, whose
audience and default scopes are those of the service under test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.http import bearer
from tests.support.tokens import TestKeyring


@dataclass
class Tenant:
    """A user acting in their own fresh workspace."""

    user_id: str
    workspace_id: str
    headers: dict[str, str] = field(repr=False)


TenantFactory = Callable[[], Tenant]
ServiceHeaders = Callable[..., dict[str, str]]


def new_tenant(keyring: TestKeyring) -> Tenant:
    user_id, workspace_id = str(uuid.uuid4()), str(uuid.uuid4())
    return Tenant(user_id, workspace_id, bearer(keyring.access_token(user_id, workspace_id)))


@pytest.fixture
def tenant_factory(keyring: TestKeyring) -> TenantFactory:
    return lambda: new_tenant(keyring)


@pytest.fixture
def alice(keyring: TestKeyring) -> Tenant:
    return new_tenant(keyring)


@pytest.fixture
def bob(keyring: TestKeyring) -> Tenant:
    return new_tenant(keyring)


@pytest.fixture
def service_headers(keyring: TestKeyring) -> ServiceHeaders:
    """`service_headers("keys:reveal")`: a service token with those scopes (the keyring's default when none)."""

    def make(*scopes: str, **overrides: Any) -> dict[str, str]:
        return bearer(keyring.service_token(tuple(scopes) or None, **overrides))

    return make


def refused_user_headers(keyring: TestKeyring, tenant: Tenant, service_headers: ServiceHeaders) -> list[dict[str, str]]:
    """Headers a public route must answer with 401: none, another scheme, no JWT, a service token (even
    with the user audience), and the tenant's access token for the service's audience, from another
    issuer, or expired."""
    now = int(time.time())
    return [
        {},
        {"authorization": "Basic dXNlcjpwYXNz"},
        bearer("not-a-jwt"),
        service_headers(),  # a service token is not a user's
        service_headers(aud="owr-api"),  # not even with the user audience: wrong type
        bearer(keyring.access_token(tenant.user_id, tenant.workspace_id, aud=keyring.service_audience)),
        bearer(keyring.access_token(tenant.user_id, tenant.workspace_id, iss="someone-else")),
        bearer(keyring.access_token(tenant.user_id, tenant.workspace_id, iat=now - 1200, exp=now - 600)),
    ]
