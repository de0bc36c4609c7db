"""Finding 13: each HTTP service's admin port (`/metrics`, health) and whose X-Forwarded-For it believes."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from owr_auth.settings import AuthSettings
from owr_keys.settings import KeysSettings
from owr_shared.admin import AdminPortSplit
from owr_shared.settings import HttpServiceSettings
from owr_usage.settings import UsageSettings


def test_each_service_has_its_own_admin_port():
    ports = {
        cls.__name__: (cls.model_fields["port"].default, cls.model_fields["admin_port"].default)
        for cls in (AuthSettings, KeysSettings, UsageSettings)
    }
    assert ports == {"AuthSettings": (8001, 9001), "KeysSettings": (8002, 9002), "UsageSettings": (8003, 9003)}


def test_production_refuses_to_trust_every_peer():
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        HttpServiceSettings(OWR_ENV="production", forwarded_allow_ips="10.77.0.2, *")
    assert HttpServiceSettings(OWR_ENV="production", forwarded_allow_ips="10.0.0.0/8").forwarded_allow_ips
    assert HttpServiceSettings(OWR_ENV="development", forwarded_allow_ips="*")  # a laptop may


def test_the_admin_port_must_differ_from_the_api_port():
    with pytest.raises(ValidationError, match="admin_port"):
        HttpServiceSettings(OWR_ENV="test", port=8001, admin_port=8001)


async def test_requests_are_told_apart_by_the_port_they_arrived_on():
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/v1/thing")
    async def thing() -> dict[str, bool]:
        return {"api": True}

    split = AdminPortSplit(app, 9001)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=split), base_url="http://svc") as client:
        assert (await client.get("http://svc:8001/api/v1/thing")).status_code == 200
        assert (await client.get("http://svc:8001/metrics")).status_code == 404
        assert (await client.get("http://svc:9001/metrics")).status_code == 200
        assert (await client.get("http://svc:9001/api/v1/thing")).status_code == 404
        # A Host header naming the admin port changes nothing: the connection's own port decides.
        assert (await client.get("http://svc:8001/metrics", headers={"host": "svc:9001"})).status_code == 404
