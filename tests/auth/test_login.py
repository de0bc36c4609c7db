"""Login: credentials, identical refusals, throttling in Redis, failing closed without Redis."""

from __future__ import annotations

import hashlib
import time
from typing import Any, cast

import httpx
from sqlalchemy import select
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from owr_auth.users.models import User
from tests.auth.conftest import PASSWORD, login, register, unique_email
from tests.support.http import assert_problem, bearer
from tools.devinfra import free_port


async def test_login_returns_a_token_pair(client):
    user = await register(client)
    r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"].startswith("owrr_")
    assert (await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))).status_code == 200


async def test_login_normalises_the_email(client):
    user = await register(client)
    await login(client, f"  {user['email'].upper()} ")


async def test_unknown_email_and_wrong_password_answer_identically(client):
    user = await register(client)
    wrong = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "not the password!"})
    unknown = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
    invalid = await client.post("/api/v1/auth/login", json={"email": "not an address", "password": PASSWORD})
    bodies = []
    for r in (wrong, unknown, invalid):
        body = assert_problem(r, 401)
        body.pop("request_id")
        bodies.append(body)
        assert r.headers.get("www-authenticate") == "Bearer"
        assert PASSWORD not in r.text
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["type"].endswith("/invalid-credentials")


async def test_unknown_email_costs_a_full_password_verification(app_factory):
    """Same timing: an unknown account is verified against a dummy hash with the real parameters."""
    async with app_factory(
        argon2_memory_kib=19456, argon2_time_cost=2, login_max_failures_per_account=1000, login_max_failures_per_ip=1000
    ) as client:
        user = await register(client)
        wrong: list[float] = []
        unknown: list[float] = []
        for _ in range(7):
            for email, sink in ((user["email"], wrong), (unique_email(), unknown)):
                start = time.perf_counter()
                r = await client.post("/api/v1/auth/login", json={"email": email, "password": "not the password!"})
                sink.append(time.perf_counter() - start)
                assert r.status_code == 401
        # Minimums: load on the machine only ever adds time. Without the dummy verification the
        # unknown path would be about 10x faster.
        ratio = min(unknown) / min(wrong)
        assert 0.5 < ratio < 2.0, (wrong, unknown)


async def test_account_lockout_after_five_failures_even_for_the_right_password(client, redis_client):
    user = await register(client)
    for _ in range(5):
        r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "wrong password!"})
        assert_problem(r, 401)
    r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    body = assert_problem(r, 429)
    assert body["type"].endswith("/login-locked")
    assert 1 <= int(r.headers["retry-after"]) <= 2

    subject = hashlib.sha256(user["email"].encode()).hexdigest()
    assert await redis_client.ttl(f"owr:login:lock:pair:{subject}:127.0.0.1") in (1, 2)
    assert int(await redis_client.get(f"owr:login:fail:pair:{subject}:127.0.0.1")) == 5
    # No address is stored in Redis, only its hash.
    assert not [k for k in await redis_client.keys("*") if user["email"].encode() in k]


async def test_lockout_doubles_with_each_further_failure(client, redis_client):
    user = await register(client)
    subject = hashlib.sha256(user["email"].encode()).hexdigest()
    lock_key = f"owr:login:lock:pair:{subject}:127.0.0.1"
    for _ in range(5):
        await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "wrong password!"})
    durations = [await redis_client.ttl(lock_key)]
    for _ in range(3):
        await redis_client.delete(lock_key)  # as if the lock had run out
        r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "wrong password!"})
        assert_problem(r, 401)
        durations.append(await redis_client.ttl(lock_key))
    assert durations == [2, 4, 8, 16]


async def test_lockout_is_capped(app_factory, redis_client):
    async with app_factory(login_max_failures_per_account=1, login_lockout_max_seconds=5) as client:
        email = unique_email()
        subject = hashlib.sha256(email.encode()).hexdigest()
        for _ in range(6):
            await redis_client.delete(f"owr:login:lock:pair:{subject}:127.0.0.1")
            await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password!"})
        assert await redis_client.ttl(f"owr:login:lock:pair:{subject}:127.0.0.1") == 5


async def test_success_clears_the_account_counter(client, redis_client):
    user = await register(client)
    subject = hashlib.sha256(user["email"].encode()).hexdigest()
    for _ in range(4):
        await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "wrong password!"})
    await login(client, user["email"])
    assert await redis_client.exists(f"owr:login:fail:pair:{subject}:127.0.0.1") == 0
    for _ in range(4):
        assert_problem(
            await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "wrong password!"}), 401
        )
    await login(client, user["email"])
    assert await redis_client.get("owr:login:fail:ip:127.0.0.1") == b"8"  # the IP's count stays


async def test_ip_lockout_after_twenty_failures_across_accounts(client, redis_client):
    user = await register(client)
    for _ in range(20):
        r = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "wrong password!"})
        assert_problem(r, 401)
    r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    assert await redis_client.exists("owr:login:lock:ip:127.0.0.1") == 1


async def test_ip_subject_is_the_forwarded_address_only_from_a_trusted_proxy(shared_app, client, redis_client):
    """The IP counter uses `request.client.host`, which uvicorn sets from X-Forwarded-For of trusted peers."""
    app = ProxyHeadersMiddleware(shared_app, trusted_hosts="127.0.0.1")
    body = {"email": unique_email(), "password": "wrong password!"}
    xff = {"x-forwarded-for": "203.0.113.7"}
    for peer in ("127.0.0.1", "198.51.100.1"):
        transport = httpx.ASGITransport(app=cast(Any, app), raise_app_exceptions=False, client=(peer, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            assert_problem(await other.post("/api/v1/auth/login", json=body, headers=xff), 401)
    assert await redis_client.get("owr:login:fail:ip:203.0.113.7") == b"1"  # via the trusted proxy
    assert await redis_client.get("owr:login:fail:ip:198.51.100.1") == b"1"  # untrusted: its own address
    assert await redis_client.exists("owr:login:fail:ip:127.0.0.1") == 0


async def test_redis_down_fails_closed_with_503(app_factory):
    async with app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as client:
        user = await register(client)  # registration does not need Redis
        r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
        body = assert_problem(r, 503)
        assert body["type"].endswith("/login-unavailable")
        assert r.headers["retry-after"]
        assert PASSWORD not in r.text


async def test_needs_rehash_upgrades_the_stored_hash_on_login(app_factory, db_session):
    async with app_factory(argon2_memory_kib=1024, argon2_time_cost=1) as client:
        user = await register(client)
    async with app_factory(argon2_memory_kib=2048, argon2_time_cost=2) as client:
        await login(client, user["email"])
        stored = (await db_session.execute(select(User.password_hash).where(User.email == user["email"]))).scalar_one()
        assert stored.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
        await login(client, user["email"])
