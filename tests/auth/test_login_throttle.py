"""Issue 13, findings 6 and 7: guesses are counted before argon2 in one atomic step, and a lockout
binds the guesser (its account-and-address pair, its address), never the account's owner elsewhere."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx

from tests.auth.conftest import PASSWORD, register
from tests.support.http import assert_problem

WRONG = "not the password at all"


@asynccontextmanager
async def from_address(app: Any, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process app whose requests come from `ip`."""
    transport = httpx.ASGITransport(app=cast(Any, app), raise_app_exceptions=False, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_concurrent_guesses_cannot_all_pass_the_check(committed_client):
    """Before: the lock was checked before argon2 and the failure counted after, so 20 guesses at
    once all reached argon2 (20 x 401). Now exactly the limit (5) are verified; the rest are 429."""
    user = await register(committed_client)
    results = await asyncio.gather(
        *(
            committed_client.post("/api/v1/auth/login", json={"email": user["email"], "password": WRONG})
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [401] * 5 + [429] * 15, statuses


async def test_a_guesser_cannot_lock_the_owner_out(shared_app, redis_client):
    """Before: 5 wrong passwords from anywhere locked the account for everyone, the owner included."""
    async with from_address(shared_app, "198.51.100.66") as attacker:
        user = await register(attacker)
        for _ in range(5):
            assert_problem(
                await attacker.post("/api/v1/auth/login", json={"email": user["email"], "password": WRONG}), 401
            )
        r = await attacker.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert_problem(r, 429)  # the guesser stays locked, even with the right password
    async with from_address(shared_app, "203.0.113.9") as owner:
        r = await owner.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert r.status_code == 200, r.text
    subject = hashlib.sha256(user["email"].encode()).hexdigest()
    assert await redis_client.exists(f"owr:login:lock:pair:{subject}:198.51.100.66") == 1
    assert await redis_client.exists(f"owr:login:lock:pair:{subject}:203.0.113.9") == 0


async def test_a_success_gives_the_address_its_attempt_back(shared_app, redis_client):
    async with from_address(shared_app, "198.51.100.77") as office:
        for _ in range(30):  # a shared address where people sign in all day is never locked by it
            user = await register(office)
            r = await office.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
            assert r.status_code == 200, r.text
    assert await redis_client.get("owr:login:fail:ip:198.51.100.77") is None


async def test_the_wrong_current_password_is_counted_before_it_is_checked(client):
    user = await register(client)
    token = (await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
    headers = {"authorization": f"Bearer {token['access_token']}"}
    body = {"current_password": WRONG, "new_password": "another long passphrase 8"}
    statuses = [
        (await client.put("/api/v1/auth/me/password", headers=headers, json=body)).status_code for _ in range(6)
    ]
    assert statuses == [403] * 5 + [429]
