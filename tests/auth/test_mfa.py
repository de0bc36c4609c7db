"""Two-factor sign-in (issue 16, item 6): setup, enable, the two-step login, replay protection, recovery
codes, the challenge's lifetime and binding, disable, throttling, and what never leaks.

Time is the app's injectable clock (`app.state.mfa.clock`), so every code is computed with pyotp for a
known moment and a step can be moved on without waiting.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncEngine

from owr_auth.mfa.errors import MfaUnreadable
from owr_auth.mfa.models import RecoveryCode, TotpCredential
from owr_auth.mfa.sealing import MfaKeys
from tests.auth.conftest import (
    AUTH_KEKS,
    PASSWORD,
    emailed_token,
    login,
    register,
    registered_session,
    unique_email,
)
from tests.support.http import assert_problem, bearer

NEW_PASSWORD = "another long passphrase 8"
START = 1_800_000_000.0  # a step boundary: 2027-01-15T08:00:00Z


class Clock:
    """The app's MFA clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += 30 * steps


@pytest.fixture
def clock(shared_app: FastAPI) -> Iterator[Clock]:
    fake = Clock(START)
    real = shared_app.state.mfa.clock
    shared_app.state.mfa.clock = fake
    yield fake
    shared_app.state.mfa.clock = real


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


async def start_setup(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


async def enabled_user(client: httpx.AsyncClient, clock: Clock) -> tuple[dict[str, Any], str, list[str]]:
    """A registered user with two-factor sign-in on: (user, TOTP secret, recovery codes). The enabling
    code used the clock's current step, so the next code the test needs is of a later step."""
    user, pair = await registered_session(client)
    setup = await start_setup(client, bearer(pair["access_token"]))
    secret = pyotp.parse_uri(setup["otpauth_uri"]).secret
    r = await client.post(
        "/api/v1/auth/2fa/enable", headers=bearer(pair["access_token"]), json={"code": code_at(secret, clock())}
    )
    assert r.status_code == 200, r.text
    return user, secret, r.json()["recovery_codes"]


async def first_step(client: httpx.AsyncClient, email: str, **kwargs: Any) -> str:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}, **kwargs)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mfa_required"] is True
    assert set(body) == {"mfa_required", "challenge", "expires_in"}  # no token of any kind
    assert body["expires_in"] == 300
    challenge: str = body["challenge"]
    return challenge


async def second_step(client: httpx.AsyncClient, challenge: str, **codes: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login/mfa", json={"challenge": challenge, **codes})


async def test_setup_gives_a_uri_and_a_qr_code_and_keeps_the_secret_sealed(client, db_session):
    user, pair = await registered_session(client)
    setup = await start_setup(client, bearer(pair["access_token"]))
    otp = pyotp.parse_uri(setup["otpauth_uri"])
    assert isinstance(otp, pyotp.TOTP)
    assert otp.issuer == "OpenRouter Watcher"
    assert otp.name == user["email"]
    assert (otp.digits, otp.interval, otp.digest().name) == (6, 30, "sha1")
    assert len(otp.secret) == 32  # 160 bits
    svg = setup["qr_svg"]
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert svg.endswith("</svg>")
    assert not re.search(r"<script|<style|<image|<foreignObject|href|on\w+=", svg, re.IGNORECASE)
    row = (
        await db_session.execute(select(TotpCredential).where(TotpCredential.user_id == uuid.UUID(user["id"])))
    ).scalar_one()
    assert row.enabled_at is None
    assert otp.secret.encode() not in bytes(row.ciphertext)
    assert row.kek_version == "t1"
    assert otp.secret not in repr(row)
    status = (await client.get("/api/v1/auth/2fa", headers=bearer(pair["access_token"]))).json()
    assert status == {"enabled": False, "pending": True, "enabled_at": None, "recovery_codes_left": 0}
    # Two-factor sign-in is not on until a code confirms the setup: the password alone still signs in.
    assert "access_token" in await login(client, user["email"])


async def test_enable_needs_a_valid_code_and_gives_ten_recovery_codes_once(client, clock, db_session):
    user, pair = await registered_session(client)
    headers = bearer(pair["access_token"])
    assert_problem(await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": "123456"}), 409)
    secret = pyotp.parse_uri((await start_setup(client, headers))["otpauth_uri"]).secret
    wrong = f"{(int(code_at(secret, clock())) + 1) % 1_000_000:06d}"
    body = assert_problem(await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": wrong}), 403)
    assert body["type"].endswith("/wrong-code")
    r = await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": code_at(secret, clock())})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    codes = r.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}", c) for c in codes)
    stored = (
        (await db_session.execute(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == uuid.UUID(user["id"]))))
        .scalars()
        .all()
    )
    assert len(stored) == 10
    assert not any(c.replace("-", "").encode() in bytes(h) for c in codes for h in stored)
    status = (await client.get("/api/v1/auth/2fa", headers=headers)).json()
    assert status["enabled"] is True
    assert status["pending"] is False
    assert status["recovery_codes_left"] == 10
    # On already: neither a new setup nor a second enable.
    assert_problem(await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": PASSWORD}), 409)
    clock.step()
    r = await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": code_at(secret, clock())})
    assert_problem(r, 409)


async def test_login_with_2fa_on_needs_the_code(client, clock):
    user, secret, _ = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    clock.step()
    r = await second_step(client, challenge, code=code_at(secret, clock()))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    pair = r.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 200
    # A wrong password never gets as far as a challenge.
    r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": NEW_PASSWORD})
    assert_problem(r, 401)


async def test_a_wrong_code_is_refused_and_the_challenge_can_be_tried_again(client, clock):
    user, secret, _ = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    clock.step()
    good = code_at(secret, clock())
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for attempt in (
        {"code": wrong},
        {"code": code_at(secret, clock() - 90)},  # three steps old: outside the drift window
        {"code": code_at(secret, clock() + 90)},
        {"recovery_code": "0000-0000-0000"},
    ):
        body = assert_problem(await second_step(client, challenge, **attempt), 401)
        assert body["type"].endswith("/invalid-second-factor")
    # Spaces as some apps show the code are fine.
    assert (await second_step(client, challenge, code=f"{good[:3]} {good[3:]}")).status_code == 200


async def test_one_step_of_clock_drift_either_way_is_accepted(client, clock):
    user, secret, _ = await enabled_user(client, clock)
    clock.step(10)
    challenge = await first_step(client, user["email"])
    assert (await second_step(client, challenge, code=code_at(secret, clock() + 30))).status_code == 200
    # The next one from the step before is now older than the last accepted: refused.
    challenge = await first_step(client, user["email"])
    assert_problem(await second_step(client, challenge, code=code_at(secret, clock() - 30)), 401)


async def test_a_code_works_once(client, clock):
    """Replay protection: the enabling code, a code already used to sign in, and an older code are refused."""
    user, secret, _ = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    enabling = code_at(secret, clock())
    assert_problem(await second_step(client, challenge, code=enabling), 401)  # same step as the enable
    clock.step()
    fresh = code_at(secret, clock())
    assert (await second_step(client, challenge, code=fresh)).status_code == 200
    again = await first_step(client, user["email"])
    assert_problem(await second_step(client, again, code=fresh), 401)
    clock.step()
    assert (await second_step(client, again, code=code_at(secret, clock()))).status_code == 200


async def test_a_recovery_code_signs_in_once(client, clock):
    user, _, codes = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    # Typed without dashes and in capitals: still the code.
    r = await second_step(client, challenge, recovery_code=codes[0].replace("-", "").upper())
    assert r.status_code == 200, r.text
    headers = bearer(r.json()["access_token"])
    assert (await client.get("/api/v1/auth/2fa", headers=headers)).json()["recovery_codes_left"] == 9
    challenge = await first_step(client, user["email"])
    assert_problem(await second_step(client, challenge, recovery_code=codes[0]), 401)
    assert (await second_step(client, challenge, recovery_code=codes[1])).status_code == 200


async def test_a_code_and_a_recovery_code_together_or_neither_is_a_422(client, clock):
    user, secret, codes = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    assert_problem(await second_step(client, challenge), 422)
    assert_problem(await second_step(client, challenge, code=code_at(secret, clock()), recovery_code=codes[0]), 422)


async def test_the_challenge_expires_after_five_minutes(client, clock):
    user, secret, _ = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    clock.now += 299
    still = await first_step(client, user["email"])
    clock.now += 2  # 301 s after the first challenge, 2 s after the second
    body = assert_problem(await second_step(client, challenge, code=code_at(secret, clock())), 401)
    assert body["type"].endswith("/invalid-mfa-challenge")
    assert (await second_step(client, still, code=code_at(secret, clock()))).status_code == 200


async def test_the_challenge_works_once(client, clock):
    user, secret, codes = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    assert (await second_step(client, challenge, recovery_code=codes[0])).status_code == 200
    clock.step()
    body = assert_problem(await second_step(client, challenge, code=code_at(secret, clock())), 401)
    assert body["type"].endswith("/invalid-mfa-challenge")
    for forged in ("owrm_" + "A" * 43, "not a challenge", challenge[:-1] + ("B" if challenge[-1] != "B" else "C")):
        assert_problem(await second_step(client, forged, code=code_at(secret, clock())), 401)


async def test_the_challenge_is_bound_to_the_client_of_the_first_step(client, shared_app, clock):
    user, secret, _ = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"], headers={"user-agent": "Firefox/130"})
    clock.step()
    code = code_at(secret, clock())
    # Another user agent, or another address (the app sees this client at 203.0.113.7), is refused.
    r = await client.post(
        "/api/v1/auth/login/mfa", json={"challenge": challenge, "code": code}, headers={"user-agent": "curl/8"}
    )
    assert_problem(r, 401)
    elsewhere = httpx.ASGITransport(app=shared_app, client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://test") as other:
        r = await other.post(
            "/api/v1/auth/login/mfa", json={"challenge": challenge, "code": code}, headers={"user-agent": "Firefox/130"}
        )
        assert_problem(r, 401)
    r = await client.post(
        "/api/v1/auth/login/mfa", json={"challenge": challenge, "code": code}, headers={"user-agent": "Firefox/130"}
    )
    assert r.status_code == 200, r.text


async def test_a_password_change_between_the_steps_ends_the_challenge(client, clock):
    user, secret, codes = await enabled_user(client, clock)
    stale = await first_step(client, user["email"])
    r = await second_step(client, await first_step(client, user["email"]), recovery_code=codes[0])
    r = await client.put(
        "/api/v1/auth/me/password",
        headers=bearer(r.json()["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 204, r.text
    clock.step()
    assert_problem(await second_step(client, stale, code=code_at(secret, clock())), 401)


async def test_another_accounts_code_does_not_complete_a_challenge(client, clock):
    alice, _, _ = await enabled_user(client, clock)
    _, mallory_secret, mallory_codes = await enabled_user(client, clock)
    challenge = await first_step(client, alice["email"])
    clock.step()
    assert_problem(await second_step(client, challenge, code=code_at(mallory_secret, clock())), 401)
    assert_problem(await second_step(client, challenge, recovery_code=mallory_codes[0]), 401)


async def test_disable_needs_a_fresh_code_or_a_recovery_code(client, clock):
    user, secret, codes = await enabled_user(client, clock)
    r = await second_step(client, await first_step(client, user["email"]), recovery_code=codes[0])
    headers = bearer(r.json()["access_token"])
    used = code_at(secret, clock())  # the enabling code
    assert_problem(await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"code": used}), 403)
    assert_problem(
        await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"recovery_code": codes[0]}), 403
    )
    assert_problem(await client.post("/api/v1/auth/2fa/disable", headers=headers, json={}), 422)
    clock.step()
    r = await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"code": code_at(secret, clock())})
    assert r.status_code == 204, r.text
    status = (await client.get("/api/v1/auth/2fa", headers=headers)).json()
    assert status == {"enabled": False, "pending": False, "enabled_at": None, "recovery_codes_left": 0}
    assert "access_token" in await login(client, user["email"])  # the password alone again
    assert_problem(await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"code": "123456"}), 409)


async def test_a_lost_authenticator_is_turned_off_with_a_recovery_code(client, clock):
    user, _, codes = await enabled_user(client, clock)
    r = await second_step(client, await first_step(client, user["email"]), recovery_code=codes[3])
    headers = bearer(r.json()["access_token"])
    r = await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"recovery_code": codes[4]})
    assert r.status_code == 204, r.text
    # And a new authenticator can be set up.
    secret = pyotp.parse_uri((await start_setup(client, headers))["otpauth_uri"]).secret
    r = await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": code_at(secret, clock())})
    assert r.status_code == 200, r.text
    assert set(r.json()["recovery_codes"]).isdisjoint(codes)


async def test_setup_needs_the_password_again(client, clock, db_session):
    """A stolen session alone cannot put the thief's authenticator on the account: setup asks the password."""
    _, pair = await registered_session(client)
    headers = bearer(pair["access_token"])
    wrong = await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": "not the password 1"})
    assert assert_problem(wrong, 403)["type"].endswith("/wrong-current-password")
    assert_problem(await client.post("/api/v1/auth/2fa/setup", headers=headers), 422)
    assert_problem(await client.post("/api/v1/auth/2fa/setup", headers=headers, json={}), 422)
    assert (await client.get("/api/v1/auth/2fa", headers=headers)).json()["pending"] is False
    assert (await start_setup(client, headers))["otpauth_uri"].startswith("otpauth://totp/")


async def test_wrong_passwords_at_setup_are_throttled_as_logins_are(client):
    """A stolen session is no oracle for the password: after `AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT` (5) wrong
    ones, setup is a 429 with Retry-After, the right password too, and no secret is made."""
    _, pair = await registered_session(client)
    headers = bearer(pair["access_token"])
    for _ in range(5):
        wrong = await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": "not the password 1"})
        assert assert_problem(wrong, 403)["type"].endswith("/wrong-current-password")
    r = await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": PASSWORD})
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    assert (await client.get("/api/v1/auth/2fa", headers=headers)).json()["pending"] is False


async def test_the_2fa_sign_in_says_whether_the_address_is_verified(client, clock, db_session):
    """The second step mints the pair as a password sign-in does: with `email_verified`, false until the
    address is verified and true after."""
    user, secret, _ = await enabled_user(client, clock)
    clock.step()
    r = await second_step(client, await first_step(client, user["email"]), code=code_at(secret, clock()))
    assert r.status_code == 200, r.text
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["email_verified"] is False
    verify = await emailed_token(client, db_session, user["id"], "verify_email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": verify})).status_code == 204
    clock.step()
    r = await second_step(client, await first_step(client, user["email"]), code=code_at(secret, clock()))
    assert r.status_code == 200, r.text
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["email_verified"] is True


async def test_new_recovery_codes_need_a_fresh_code_and_replace_the_old_ones(client, clock):
    user, secret, old = await enabled_user(client, clock)
    r = await second_step(client, await first_step(client, user["email"]), recovery_code=old[0])
    headers = bearer(r.json()["access_token"])
    used = code_at(secret, clock())  # the enabling code: not fresh
    path = "/api/v1/auth/2fa/recovery-codes"
    assert assert_problem(await client.post(path, headers=headers, json={"code": used}), 403)["type"].endswith(
        "/wrong-code"
    )
    assert_problem(await client.post(path, headers=headers, json={"recovery_code": old[1]}), 422)
    clock.step()
    r = await client.post(path, headers=headers, json={"code": code_at(secret, clock())})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    new = r.json()["recovery_codes"]
    assert len(set(new)) == 10
    assert set(new).isdisjoint(old)
    assert (await client.get("/api/v1/auth/2fa", headers=headers)).json()["recovery_codes_left"] == 10
    # The old codes stopped working; a new one signs in (once).
    challenge = await first_step(client, user["email"])
    assert_problem(await second_step(client, challenge, recovery_code=old[1]), 401)
    assert (await second_step(client, challenge, recovery_code=new[0])).status_code == 200
    # Off: nothing to replace.
    clock.step()
    r = await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"code": code_at(secret, clock())})
    assert r.status_code == 204, r.text
    clock.step()
    assert_problem(await client.post(path, headers=headers, json={"code": code_at(secret, clock())}), 409)


async def test_wrong_codes_are_throttled_per_account(client, clock):
    user, secret, _ = await enabled_user(client, clock)
    challenge = await first_step(client, user["email"])
    clock.step()
    good = code_at(secret, clock())
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert_problem(await second_step(client, challenge, code=wrong), 401)
    # The fifth wrong code locks the account's second step, the right code too, from any address.
    assert_problem(await second_step(client, challenge, code=wrong), 401)
    r = await second_step(client, challenge, code=good)
    body = assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    assert good not in str(body)


async def test_setup_enable_and_disable_need_a_signed_in_session_not_an_api_token(client, clock):
    _, pair = await registered_session(client)
    r = await client.post("/api/v1/tokens", headers=bearer(pair["access_token"]), json={"name": "script"})
    token = bearer(r.json()["token"])
    # The API token is introspected into a JWT carrying `tid`; here it is signed by auth as the gateway gets it.
    r = await client.post(
        "/internal/tokens/introspect",
        json={"token": r.json()["token"]},
        headers=_gateway_basic(),
    )
    jwt_of_token = bearer(r.json()["access_token"])
    for method, path, body in (
        ("GET", "/api/v1/auth/2fa", None),
        ("POST", "/api/v1/auth/2fa/setup", {"password": PASSWORD}),
        ("POST", "/api/v1/auth/2fa/recovery-codes", {"code": "123456"}),
        ("POST", "/api/v1/auth/2fa/enable", {"code": "123456"}),
        ("POST", "/api/v1/auth/2fa/disable", {"code": "123456"}),
    ):
        assert_problem(await client.request(method, path, json=body, headers=jwt_of_token), 403)
        assert_problem(await client.request(method, path, json=body, headers=token), 401)


def _gateway_basic() -> dict[str, str]:
    from tests.auth.conftest import GATEWAY_SECRET, basic

    return basic("gateway", GATEWAY_SECRET)


async def test_the_secret_and_the_recovery_codes_never_reach_logs_or_later_answers(client, clock, json_logs):
    email = unique_email()
    await register(client, email)
    pair = await login(client, email)
    headers = bearer(pair["access_token"])
    setup = await start_setup(client, headers)
    secret = pyotp.parse_uri(setup["otpauth_uri"]).secret
    r = await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": code_at(secret, clock())})
    codes = r.json()["recovery_codes"]
    assert secret not in r.text
    challenge = await first_step(client, email)
    clock.step()
    r = await second_step(client, challenge, recovery_code=codes[0])
    later = [r.text]
    for path in ("/api/v1/auth/2fa", "/api/v1/auth/me", "/api/v1/auth/sessions"):
        later.append((await client.get(path, headers=headers)).text)
    again = await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": PASSWORD})
    later.append(again.text)  # 409, no secret
    for text in later:
        assert secret not in text
        assert not any(c in text or c.replace("-", "") in text for c in codes)
    logs = json_logs.getvalue()
    assert "mfa_enabled" in logs
    assert "mfa_recovery_code_used" in logs
    for value in (secret, setup["otpauth_uri"], challenge, *codes, *(c.replace("-", "") for c in codes)):
        assert value not in logs


async def test_two_requests_with_one_code_at_once_sign_in_once(committed_client, shared_app, clock):
    user, secret, _ = await enabled_user(committed_client, clock)
    clock.step()
    code = code_at(secret, clock())
    challenges = [await first_step(committed_client, user["email"]) for _ in range(2)]
    answers = await asyncio.gather(*(second_step(committed_client, c, code=code) for c in challenges))
    assert sorted(r.status_code for r in answers) == [200, 401]


async def _wait_for_a_lock_wait(engine: AsyncEngine) -> None:
    """Until some session of this database waits for a lock (the request blocked on the held row)."""
    for _ in range(200):
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                sql(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the request never waited for the credential's lock")


@pytest.mark.parametrize("path", ["/api/v1/auth/2fa/recovery-codes", "/api/v1/auth/2fa/disable"])
async def test_a_disable_that_wins_the_lock_makes_the_other_request_a_409(committed_client, db_engine, clock, path):
    """New recovery codes (or a second disable) read "on" before the lock while a disable holds it: once the
    disable commits, the request is 409 `mfa-not-enabled` as it would be a moment later, not `wrong-code`."""
    user, secret, _ = await enabled_user(committed_client, clock)
    clock.step()
    session = await second_step(
        committed_client, await first_step(committed_client, user["email"]), code=code_at(secret, clock())
    )
    headers = bearer(session.json()["access_token"])
    clock.step()
    holder = await db_engine.connect()
    await holder.begin()
    try:
        # The racing disable: it holds the credential's row lock (as `check` takes it) and removes it.
        await holder.execute(
            sql("SELECT 1 FROM auth.totp_credentials WHERE user_id = :u FOR UPDATE"), {"u": user["id"]}
        )
        request = asyncio.ensure_future(
            committed_client.post(path, headers=headers, json={"code": code_at(secret, clock())})
        )
        await _wait_for_a_lock_wait(db_engine)
        await holder.execute(sql("DELETE FROM auth.recovery_codes WHERE user_id = :u"), {"u": user["id"]})
        await holder.execute(sql("DELETE FROM auth.totp_credentials WHERE user_id = :u"), {"u": user["id"]})
        await holder.commit()
        answer = await asyncio.wait_for(request, 10)
    finally:
        await holder.close()
    assert assert_problem(answer, 409)["type"].endswith("/mfa-not-enabled")


def test_a_sealed_secret_opens_only_for_its_user_and_key():
    keys = MfaKeys({"v1": bytes(32)}, "v1", recovery_pepper=b"p" * 32)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    sealed = keys.seal(alice, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert keys.open(alice, sealed) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert b"JBSWY3DP" not in sealed.ciphertext
    with pytest.raises(MfaUnreadable):
        keys.open(bob, sealed)  # moved onto another user's row
    with pytest.raises(MfaUnreadable):
        MfaKeys({"v1": bytes([1]) * 32}, "v1", recovery_pepper=b"p" * 32).open(alice, sealed)  # another KEK
    with pytest.raises(MfaUnreadable):
        keys.open(alice, replace(sealed, ciphertext=sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])))
    assert keys.recovery_hash(alice, "abcd") != keys.recovery_hash(bob, "abcd")
    assert "0000" not in repr(keys)


async def test_a_kek_rotation_reaches_a_secret_when_its_code_is_next_used(app_factory, clock, db_session):
    """An old KEK stays listed; the first code checked after the rotation re-wraps the secret under the new one."""
    new = base64.b64encode(b"n" * 32).decode()
    rotated = json.dumps({**json.loads(AUTH_KEKS), "t2": new})
    async with app_factory() as client:
        client.app.state.mfa.clock = clock
        user, secret, _ = await enabled_user(client, clock)
    async with app_factory(keks=rotated, active_kek_version="t2") as client:
        client.app.state.mfa.clock = clock
        challenge = await first_step(client, user["email"])
        clock.step()
        assert (await second_step(client, challenge, code=code_at(secret, clock()))).status_code == 200
    row = (
        await db_session.execute(select(TotpCredential).where(TotpCredential.user_id == uuid.UUID(user["id"])))
    ).scalar_one()
    assert row.kek_version == "t2"
    async with app_factory(keks=json.dumps({"t2": new}), active_kek_version="t2") as client:
        client.app.state.mfa.clock = clock
        challenge = await first_step(client, user["email"])
        clock.step()
        assert (await second_step(client, challenge, code=code_at(secret, clock()))).status_code == 200
