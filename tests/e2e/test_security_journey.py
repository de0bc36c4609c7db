"""Issue 16's two-factor sign-in and sessions through the real gateway and services, and in a browser.

"Done means": with 2FA on, login without the code fails, with the code succeeds, and with a recovery code
succeeds once. A session ended from the sessions list stops its access token at the gateway at once.
Codes are computed with pyotp from the setup's URI, on the real clock: a code of the next time-step is
still accepted (one step of drift), which is how a test moves past the step a code was used in.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import httpx
import jwt
import pyotp
import pytest

from tests.e2e.conftest import System, fresh_login_window
from tests.e2e.test_account_email_journey import text_of
from tests.e2e.test_journey import PASSWORD, problem
from tests.e2e.test_sync_journey import wait_for
from tests.e2e.test_web_journey import browser, console_problems, context, register  # noqa: F401 - fixtures
from tests.support.browser import axe_violations, screenshot
from tests.support.mail import Inbox

pytestmark = pytest.mark.e2e


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _next_code(secret: str) -> str:
    """The code of the next time-step: later than any code used so far, and within the allowed drift."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def _account(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    email = f"mfa.{secrets.token_hex(4)}@example.com"
    assert (await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return email, r.json()


async def test_two_factor_login_needs_the_code_and_a_recovery_code_works_once(system: System, mail_inbox: Inbox):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        email, pair = await _account(client)
        headers = _bearer(pair["access_token"])
        problem(await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": "wrong one 123"}), 403)
        r = await client.post("/api/v1/auth/2fa/setup", headers=headers, json={"password": PASSWORD})
        assert r.status_code == 200, r.text
        secret = pyotp.parse_uri(r.json()["otpauth_uri"]).secret
        # The previous step's code (one step of drift is allowed), so the current one is still fresh below.
        previous = pyotp.TOTP(secret).at(time.time() - 30)
        r = await client.post("/api/v1/auth/2fa/enable", headers=headers, json={"code": previous})
        assert r.status_code == 200, r.text
        first_codes = r.json()["recovery_codes"]
        # New recovery codes, for a fresh code: the first ten stop working.
        r = await client.post(
            "/api/v1/auth/2fa/recovery-codes", headers=headers, json={"code": pyotp.TOTP(secret).now()}
        )
        assert r.status_code == 200, r.text
        recovery = r.json()["recovery_codes"]
        assert set(recovery).isdisjoint(first_codes)

        # Without the code: the password alone gives no token, and the second step refuses no or a wrong code.
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["mfa_required"] is True
        assert "access_token" not in first
        assert "refresh_token" not in first
        problem(await client.post("/api/v1/auth/login/mfa", json={"challenge": first["challenge"]}), 422)
        wrong = f"{(int(_next_code(secret)) + 1) % 1_000_000:06d}"
        r = await client.post("/api/v1/auth/login/mfa", json={"challenge": first["challenge"], "code": wrong})
        problem(r, 401)

        # With the code: a working pair, through the gateway.
        r = await client.post(
            "/api/v1/auth/login/mfa", json={"challenge": first["challenge"], "code": _next_code(secret)}
        )
        assert r.status_code == 200, r.text
        assert (await client.get("/api/v1/keys", headers=_bearer(r.json()["access_token"]))).status_code == 200

        # An old recovery code: never; a new one: once. (Each sign-in is two calls of the gateway's login
        # policy, 10 a minute per address: this half starts a new window, as a minute later would.)
        await fresh_login_window(system)
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        r = await client.post(
            "/api/v1/auth/login/mfa", json={"challenge": r.json()["challenge"], "recovery_code": first_codes[0]}
        )
        problem(r, 401)
        for expected in (200, 401):
            r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            challenge = r.json()["challenge"]
            r = await client.post("/api/v1/auth/login/mfa", json={"challenge": challenge, "recovery_code": recovery[0]})
            assert r.status_code == expected, r.text

    # The worker sent the address a notice that two-factor sign-in was turned on: no secret, no code in it.
    async def notice() -> str | None:
        for message in mail_inbox.messages:
            if message["To"] == email and message["Subject"] == "Two-factor sign-in was turned on":
                return text_of(message)
        return None

    text = await wait_for(notice, seconds=30, what="the two-factor notice")
    assert "Two-factor sign-in was turned on for your OpenRouter Watcher account" in text
    for shown_once in (secret, previous, *first_codes, *recovery):
        assert shown_once not in text


async def test_an_ended_session_is_refused_at_the_gateway_within_a_second(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        email, mine = await _account(client)
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        other = r.json()
        for pair in (mine, other):  # the gateway has verified and cached both
            assert (await client.get("/api/v1/keys", headers=_bearer(pair["access_token"]))).status_code == 200
        r = await client.get("/api/v1/auth/sessions", headers=_bearer(mine["access_token"]))
        assert r.json()["total"] == 2
        sid = jwt.decode(other["access_token"], options={"verify_signature": False})["sid"]
        started = time.monotonic()
        r = await client.delete(f"/api/v1/auth/sessions/{sid}", headers=_bearer(mine["access_token"]))
        assert r.status_code == 204, r.text
        for path in ("/api/v1/keys", "/api/v1/usage/accounts", "/api/v1/auth/me"):
            problem(await client.get(path, headers=_bearer(other["access_token"])), 401)
        assert time.monotonic() - started < 1.0
        assert (await client.get("/api/v1/keys", headers=_bearer(mine["access_token"]))).status_code == 200

        # Sign out everywhere: this one too, at once.
        r = await client.post("/api/v1/auth/sessions/revoke-all", headers=_bearer(mine["access_token"]))
        assert r.status_code == 204, r.text
        problem(await client.get("/api/v1/keys", headers=_bearer(mine["access_token"])), 401)


async def test_two_factor_sign_in_in_the_browser(system: System, browser: Any) -> None:  # noqa: F811 - fixture
    # axe is injected as a script of its own: this context alone bypasses the pages' CSP (the page's own
    # scripts and the QR image still run under it in the other contexts of the suite).
    ctx = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    try:
        page = await ctx.new_page()
        problems = console_problems(page)
        email = await register(page, system)
        await page.click("nav[aria-label=Main] a:has-text('Settings')")
        await page.wait_for_url(system.gateway + "/profile")
        await page.click("nav[aria-label=Settings] a:has-text('Security')")
        await page.wait_for_url(system.gateway + "/security")
        assert await axe_violations(page) == []
        await page.fill("#setup-password", PASSWORD)
        await page.click("button:has-text('Set up two-factor sign-in')")
        await page.locator("img.qr").wait_for()
        assert await page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
        secret = re.sub(r"\s", "", await page.locator("code.secret").inner_text())
        await screenshot(page, "security-setup")
        assert await axe_violations(page) == []
        await page.fill("#enable-code", pyotp.TOTP(secret).now())
        await page.click("button:has-text('Turn two-factor sign-in on')")
        await page.locator("#codes-title").wait_for()
        recovery = [c.strip() for c in await page.locator("ul.codes code").all_inner_texts()]
        assert len(recovery) == 10
        await screenshot(page, "security-recovery-codes")
        assert await axe_violations(page) == []

        # Sign out; the password alone leads to the code page, and a code signs in.
        await page.click("header button:has-text('Sign out')")
        await page.wait_for_url(re.compile(r".*/login\?done=signed_out$"))
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        await page.click("main button[type=submit]")
        await page.wait_for_url(re.compile(r".*/login/mfa\?next=/$"))
        assert await axe_violations(page) == []
        await screenshot(page, "login-mfa")
        await page.fill("#code", "000000")
        await page.click("button:has-text('Verify')")
        assert "That code is not valid" in await page.locator(".message.error").inner_text()
        await page.fill("#code", _next_code(secret))
        await page.click("button:has-text('Verify')")
        await page.wait_for_url(system.gateway + "/")
        assert await page.locator(".who").inner_text() == email

        # A recovery code signs in once. (Each sign-in is two calls of the gateway's login policy, 10 a
        # minute per address: the journey's second half starts a new window, as a minute later would.)
        await fresh_login_window(system)
        for attempt in range(2):
            await page.click("header button:has-text('Sign out')")
            await page.wait_for_url(re.compile(r".*/login\?done=signed_out$"))
            await page.fill("#email", email)
            await page.fill("#password", PASSWORD)
            await page.click("main button[type=submit]")
            await page.wait_for_url(re.compile(r".*/login/mfa.*"))
            await page.click("summary:has-text('recovery code')")
            await page.fill("#recovery-code", recovery[0])
            await page.click("button:has-text('Sign in with the recovery code')")
            if attempt == 0:
                await page.wait_for_url(system.gateway + "/")
            else:
                assert "That code is not valid" in await page.locator(".message.error").inner_text()

        # The sessions list; sign out everywhere ends this browser's session too.
        await page.goto(system.gateway + "/login")
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        await page.click("main button[type=submit]")
        await page.click("summary:has-text('recovery code')")
        await page.fill("#recovery-code", recovery[1])
        await page.click("button:has-text('Sign in with the recovery code')")
        await page.wait_for_url(system.gateway + "/")
        await page.goto(system.gateway + "/security")
        assert await page.locator("text=8 of 10 recovery codes left").count() == 1
        assert await page.locator("span.badge:has-text('this browser')").count() == 1
        await screenshot(page, "security")
        assert await axe_violations(page) == []
        await page.set_viewport_size({"width": 360, "height": 800})
        await screenshot(page, "security-phone")
        for path in ("/profile", "/security"):  # nothing wider than a phone
            await page.goto(system.gateway + path)
            assert await page.evaluate("document.documentElement.scrollWidth <= 360"), path
        await page.set_viewport_size({"width": 1280, "height": 900})
        html = await page.content()
        for secret_value in (secret, *recovery):
            assert secret_value not in html
        await page.click("button:has-text('Sign out everywhere')")
        await page.wait_for_url(re.compile(r".*/login\?done=everywhere$"))
        await page.goto(system.gateway + "/security")
        assert "/login" in page.url
        assert problems == [], problems
    finally:
        await ctx.close()
