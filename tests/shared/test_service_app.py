import asyncio
import json

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from pydantic_settings import SettingsConfigDict

from owr_shared.app import create_service_app
from owr_shared.errors import Conflict
from owr_shared.settings import BaseServiceSettings
from tests.support.apps import admin_get


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="T_", extra="ignore", frozen=True)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


router = APIRouter()


@router.post("/things/{thing_id}")
async def make_thing(thing_id: int, body: Body) -> dict[str, object]:
    if body.name == "dup":
        raise Conflict("That thing exists already.")
    if body.name == "boom":
        raise RuntimeError("internal detail: db password is hunter2")
    return {"id": thing_id, "name": body.name}


@pytest.fixture
async def client(redis_url):
    settings = Settings(OWR_ENV="test", REDIS_URL=redis_url)
    app = create_service_app(service="demo", settings=settings, routers=[router], title="demo", use_database=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def test_problem_error_is_rfc9457(client):
    r = await client.post("/things/1", json={"name": "dup", "count": 1}, headers={"x-request-id": "rid-1"})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 409
    assert body["title"] == "Conflict"
    assert body["type"].endswith("/conflict")
    assert body["instance"] == "/things/1"
    assert body["request_id"] == "rid-1"
    assert r.headers["x-request-id"] == "rid-1"


async def test_validation_and_malformed_json(client):
    r = await client.post("/things/1", json={"name": "x", "count": "many", "extra": "sk-or-v1-secretsecret"})
    assert r.status_code == 422
    body = r.json()
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "count"), ("body", "extra")}
    assert "sk-or-v1" not in r.text  # the offending input is never echoed
    r = await client.post("/things/1", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["type"].endswith("/malformed-json")


async def test_unexpected_error_hides_internals(client):
    r = await client.post("/things/1", json={"name": "boom", "count": 1})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in r.text
    assert "RuntimeError" not in r.text


async def test_unknown_route_and_method_are_problems(client):
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = await client.get("/things/1")
    assert r.status_code == 405


async def test_metrics_are_labelled_by_route_template(client):
    await client.post("/things/12345", json={"name": "a", "count": 1})
    assert (await client.get("/metrics")).status_code == 404  # the API port never serves it
    text = (await admin_get(client.app, "/metrics")).text
    assert 'route="/things/{thing_id}"' in text
    assert "/things/12345" not in text
    assert 'owr_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/things/{thing_id}"' in text


async def test_health_live_and_ready_with_failing_and_slow_checks(client):
    assert (await client.get("/health/live")).status_code == 200
    r = await client.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["checks"] == {"redis": "ok"}

    async def slow() -> None:
        await asyncio.sleep(5)

    async def broken() -> None:
        raise ConnectionError("no route to 10.0.0.1")

    health = client.app.state.health
    health.timeout = 0.1
    health.add("slow", slow)
    health.add("broken", broken)
    r = await client.get("/health/ready")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["slow"] == "timeout"
    assert checks["broken"] == "error: ConnectionError"
    assert "10.0.0.1" not in json.dumps(checks)


async def test_a_degrading_check_is_reported_but_leaves_the_process_ready(client):
    async def broken() -> None:
        raise ConnectionError("redis away")

    health = client.app.state.health
    health.add("shared-cache", broken, degrades=True)
    try:
        r = await client.get("/health/ready")
        assert r.status_code == 200
        assert r.json()["status"] == "degraded"
        assert r.json()["checks"]["shared-cache"] == "error: ConnectionError"
        health.shutting_down = True
        assert (await client.get("/health/ready")).status_code == 503
    finally:
        health.shutting_down = False
        del health.checks["shared-cache"]
