"""Security notices: two-factor sign-in turned on or off, new recovery codes, a changed or reset password, and a
sign-in from a device new to the account each queue exactly one email on the auth mail path, in the change's
transaction, to the address on file (verified or not); it says what happened and when, and holds no secret."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.mail.renderers import RENDERERS
from owr_auth.notices.service import NOTICES, NOTICES_PER_HOUR, NoticeKind
from owr_shared.wire.mail import MAIL_KINDS
from tests.auth.conftest import (
    MAIL_QUEUE,
    PASSWORD,
    emailed_token,
    login,
    queued_mails,
    register,
    registered_session,
    render_mail,
)
from tests.auth.test_account import change
from tests.auth.test_mfa import (  # noqa: F401 - `clock` is the two-factor clock fixture
    clock,
    code_at,
    enabled_user,
    first_step,
    second_step,
)
from tests.auth.test_password_reset import ask_reset, confirm
from tests.support.http import assert_problem, bearer
from tests.support.ports import free_port

NEW_PASSWORD = "a fresh passphrase for notices 4"
NOTICE_KINDS = set(get_args(NoticeKind))
# What a stranger's client may say it is: none of its own words may reach the email.
FOREIGN_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0 URGENT call +1-555-0100 or visit evil.example"
FOREIGN_ADDRESS = "203.0.113.9"
ANY_TOKEN = re.compile(r"owr[a-z]_|token=", re.IGNORECASE)


async def notices_of(db_session: AsyncSession, user: dict[str, Any]) -> list[Any]:
    return [m for m in await queued_mails(db_session, user["id"]) if m.kind in NOTICE_KINDS]


async def the_notice(
    client: httpx.AsyncClient, db_session: AsyncSession, user: dict[str, Any], kind: str, *secrets: str
) -> dict[str, Any]:
    """The account's one notice of `kind`, rendered as the worker renders it; checked for what every notice
    says (when, in UTC; the reset and security pages) and for what none may hold (`secrets`, a token, a link
    with one)."""
    (mail,) = [m for m in await notices_of(db_session, user) if m.kind == kind]
    assert (mail.recipient, mail.status) == (user["email"], "pending")
    assert abs(mail.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    r = await render_mail(client, mail.id)
    assert r.status_code == 200, r.text
    rendered: dict[str, Any] = r.json()
    assert (rendered["kind"], rendered["to"]) == (kind, user["email"])
    assert rendered["subject"] == NOTICES[kind].subject  # type: ignore[index]
    when = mail.created_at.astimezone(UTC).strftime("%Y-%m-%d at %H:%M UTC")
    for body in (rendered["text"], rendered["html"]):
        assert when in body
        assert "http://localhost:8000/forgot-password" in body
        assert "http://localhost:8000/security" in body
        assert "If this was not you" in body
        assert not ANY_TOKEN.search(body), body
        for secret in (PASSWORD, NEW_PASSWORD, *secrets):
            assert secret not in body
    return rendered


def test_every_kind_has_a_renderer_and_every_notice_a_text():
    assert set(RENDERERS) == set(MAIL_KINDS)
    assert set(MAIL_KINDS) >= NOTICE_KINDS
    assert set(NOTICES) == NOTICE_KINDS


async def test_turning_two_factor_sign_in_on_sends_one_notice_without_the_secret_or_codes(
    client,
    clock,  # noqa: F811 - fixture
    db_session,
    shared_app,
    redis_client,
):
    user, secret, codes = await enabled_user(client, clock)
    rendered = await the_notice(
        client,
        db_session,
        user,
        "mfa_enabled",
        secret,
        code_at(secret, clock()),
        *codes,
        *(c.replace("-", "") for c in codes),
    )
    assert "Two-factor sign-in was turned on" in rendered["text"]
    # On the one path: the job is queued once the change committed, with the mail's id only.
    (mail,) = await notices_of(db_session, user)
    await shared_app.state.mail_queue.drain()
    assert f"send_auth_mail:{mail.id}".encode() in await redis_client.zrange(MAIL_QUEUE, 0, -1)


async def test_new_recovery_codes_send_one_notice_without_any_code(client, clock, db_session):  # noqa: F811 - fixture
    user, secret, old = await enabled_user(client, clock)
    headers = bearer((await login_with_code(client, user, secret, clock))["access_token"])
    clock.step()
    fresh = code_at(secret, clock())
    r = await client.post("/api/v1/auth/2fa/recovery-codes", headers=headers, json={"code": fresh})
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    rendered = await the_notice(client, db_session, user, "recovery_codes_replaced", secret, fresh, *old, *new)
    assert "earlier recovery codes no longer work" in rendered["text"]
    assert [m.kind for m in await notices_of(db_session, user)] == ["mfa_enabled", "recovery_codes_replaced"]


async def test_turning_two_factor_sign_in_off_sends_one_notice(client, clock, db_session):  # noqa: F811 - fixture
    user, secret, codes = await enabled_user(client, clock)
    headers = bearer((await login_with_code(client, user, secret, clock))["access_token"])
    r = await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"recovery_code": codes[2]})
    assert r.status_code == 204, r.text
    rendered = await the_notice(client, db_session, user, "mfa_disabled", secret, *codes)
    assert "Your password alone signs you in now." in rendered["text"]
    assert [m.kind for m in await notices_of(db_session, user)] == ["mfa_enabled", "mfa_disabled"]


async def test_a_refused_two_factor_change_sends_nothing(client, clock, db_session):  # noqa: F811 - fixture
    user, secret, _ = await enabled_user(client, clock)
    headers = bearer((await login_with_code(client, user, secret, clock))["access_token"])
    stale = code_at(secret, clock())  # used by the sign-in already
    assert_problem(await client.post("/api/v1/auth/2fa/disable", headers=headers, json={"code": stale}), 403)
    assert_problem(await client.post("/api/v1/auth/2fa/recovery-codes", headers=headers, json={"code": stale}), 403)
    assert [m.kind for m in await notices_of(db_session, user)] == ["mfa_enabled"]


async def test_a_password_change_sends_one_notice_to_an_unverified_address(client, db_session):
    user, pair = await registered_session(client)
    me = (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).json()
    assert me["email_verified"] is False  # decided: security notices go to the address on file all the same
    assert (await change(client, pair["access_token"], PASSWORD, NEW_PASSWORD)).status_code == 204
    rendered = await the_notice(client, db_session, user, "password_changed", pair["refresh_token"])
    assert "was changed" in rendered["text"]
    assert "signed out" in rendered["text"]


async def test_a_password_reset_that_rolls_back_sends_nothing(client, app_factory, db_session, json_logs):
    """Redis down at the reset's end: the sessions' revocation cannot be recorded, so the new password, and
    the notice queued in its transaction before that, roll back."""
    user = await register(client)
    assert (await ask_reset(client, user["email"])).status_code == 202
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    async with app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as offline:
        assert_problem(await confirm(offline, token, NEW_PASSWORD), 503)
    queued = [json.loads(line) for line in json_logs.getvalue().splitlines() if '"mail_queued"' in line]
    assert [entry["kind"] for entry in queued][-1] == "password_changed"  # it was queued, then rolled back
    assert await notices_of(db_session, user) == []
    assert "access_token" in await login(client, user["email"], PASSWORD)


async def test_a_password_reset_sends_one_notice_without_the_link(client, db_session):
    user = await register(client)
    assert (await ask_reset(client, user["email"])).status_code == 202
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    assert await notices_of(db_session, user) == []  # asking for a link changes nothing yet
    assert (await confirm(client, token, NEW_PASSWORD)).status_code == 204
    await the_notice(client, db_session, user, "password_changed", token, token[5:])


async def test_a_sign_in_from_a_new_device_sends_one_notice_naming_it_in_fixed_words(client, shared_app, db_session):
    user, _ = await registered_session(client)  # the account's first session: no notice
    await login(client, user["email"])  # the same client again: none either
    assert await notices_of(db_session, user) == []
    elsewhere = httpx.ASGITransport(app=shared_app, client=(FOREIGN_ADDRESS, 5000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://test") as stranger:
        r = await stranger.post(
            "/api/v1/auth/login",
            json={"email": user["email"], "password": PASSWORD},
            headers={"user-agent": FOREIGN_AGENT},
        )
        assert r.status_code == 200, r.text
        pair = r.json()
        rendered = await the_notice(
            client, db_session, user, "new_sign_in", FOREIGN_ADDRESS, "evil", "555", pair["refresh_token"]
        )
        assert "(Firefox on Linux)" in rendered["text"]
        (mail,) = await notices_of(db_session, user)
        sessions = (await client.get("/api/v1/auth/sessions", headers=bearer(pair["access_token"]))).json()["items"]
        assert str(mail.subject_id) in {s["id"] for s in sessions}
        # That device is known now.
        r = await stranger.post(
            "/api/v1/auth/login",
            json={"email": user["email"], "password": PASSWORD},
            headers={"user-agent": FOREIGN_AGENT},
        )
        assert r.status_code == 200, r.text
    assert len(await notices_of(db_session, user)) == 1


async def test_a_user_agent_a_session_refreshed_with_is_known(client, db_session):
    user, pair = await registered_session(client)
    updated = {"user-agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/130.0 Safari/537.36"}
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}, headers=updated)
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}, headers=updated)
    assert r.status_code == 200, r.text
    assert await notices_of(db_session, user) == []


async def test_a_two_factor_sign_in_from_a_new_device_sends_one_notice(client, clock, db_session):  # noqa: F811 - fixture
    user, secret, _ = await enabled_user(client, clock)
    agent = {"user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1"}
    challenge = await first_step(client, user["email"], headers=agent)
    assert [m.kind for m in await notices_of(db_session, user)] == ["mfa_enabled"]  # not signed in yet
    clock.step()
    code = code_at(secret, clock())
    r = await client.post("/api/v1/auth/login/mfa", json={"challenge": challenge, "code": code}, headers=agent)
    assert r.status_code == 200, r.text
    rendered = await the_notice(client, db_session, user, "new_sign_in", secret, code, challenge)
    assert "(Safari on iOS)" in rendered["text"]


async def test_a_notice_for_an_account_deleted_meanwhile_goes_with_it(client, db_session):
    user, pair = await registered_session(client)
    assert (await change(client, pair["access_token"], PASSWORD, NEW_PASSWORD)).status_code == 204
    (mail,) = await notices_of(db_session, user)
    fresh = await login(client, user["email"], NEW_PASSWORD)
    assert (await client.delete("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).status_code == 204
    assert await queued_mails(db_session, uuid.UUID(user["id"])) == []
    assert_problem(await render_mail(client, mail.id), 410)


# --- helpers -------------------------------------------------------------------------------------------


async def login_with_code(
    client: httpx.AsyncClient, user: dict[str, Any], secret: str, mfa_clock: Any
) -> dict[str, Any]:
    mfa_clock.step()
    r = await second_step(client, await first_step(client, user["email"]), code=code_at(secret, mfa_clock()))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_notices_of_one_kind_are_held_past_three_an_hour(client, db_session):
    """Anyone may register an address nobody verified: signing in from ever new user agents must not flood it."""
    user, pair = await registered_session(client)
    held_before = REGISTRY.get_sample_value("owr_auth_security_notices_held_total", {"kind": "new_sign_in"}) or 0
    for n in range(NOTICES_PER_HOUR + 2):
        r = await client.post(
            "/api/v1/auth/login",
            json={"email": user["email"], "password": PASSWORD},
            headers={"user-agent": f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{120 + n}.0"},
        )
        assert r.status_code == 200, r.text  # the sign-in itself is never refused
    notices = await notices_of(db_session, user)
    assert [m.kind for m in notices] == ["new_sign_in"] * NOTICES_PER_HOUR
    held = REGISTRY.get_sample_value("owr_auth_security_notices_held_total", {"kind": "new_sign_in"})
    assert held == held_before + 2
    # Another kind has its own allowance: a password change still tells the person.
    r = await change(client, pair["access_token"], PASSWORD, NEW_PASSWORD)
    assert r.status_code == 204, r.text
    assert [m.kind for m in await notices_of(db_session, user)].count("password_changed") == 1
