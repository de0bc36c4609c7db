"""Web's sign-in second step and `/security` (issue 16) against the real auth app, in-process.

Web's API client is pointed at auth's app (auth serves the same `/api/v1/auth/...` paths the gateway routes
to it), so these pages run against real two-factor sign-in and sessions on the session's database and
Redis; auth's MFA clock is the test's. Rows are committed under fresh random emails. The browser journey
through the real gateway is tests/e2e/test_security_journey.py.
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from owr_auth.app import create_app as create_auth_app
from owr_auth.settings import AuthSettings
from owr_web.app import create_app as create_web_app
from owr_web.settings import WebSettings
from tests.support.apps import running
from tests.support.settings import service_settings

PASSWORD = "a long and unusual passphrase 7"
START = 1_800_000_000.0
AUTH_SECRETS = {
    "api_token_pepper": "pepper-for-web-tests-" + "p9" * 16,
    "keks": json.dumps({"w1": base64.b64encode(b"w" * 32).decode()}),
    "active_kek_version": "w1",
    "recovery_code_pepper": "recovery-pepper-for-web-tests-" + "r8" * 12,
    "argon2_memory_kib": 1024,
    "argon2_time_cost": 1,
    "usage_url": None,
    # Registration queues a verification email: on a queue of its own, never the e2e worker's.
    "queue_name": f"arq:queue:web-security-tests-{secrets.token_hex(4)}",
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    """A browser-like client of web (cookies kept, redirects not followed), and auth's app behind it."""

    web: httpx.AsyncClient
    auth: FastAPI
    clock: Clock

    async def page(self, path: str) -> httpx.Response:
        r = await self.web.get(path)
        assert r.status_code == 200, (r.status_code, r.headers.get("location"))
        return r

    async def post(self, path: str, data: dict[str, str], *, token_from: str) -> httpx.Response:
        """Post a form with the CSRF token of the page at `token_from`, as a browser would."""
        token = CSRF.search((await self.page(token_from)).text)
        assert token is not None
        return await self.web.post(path, data={**data, "csrf_token": token.group(1)})


@pytest.fixture
async def site(database_url: str, redis_url: str, redis_client: Any) -> AsyncIterator[Site]:
    auth = create_auth_app(service_settings(AuthSettings, database_url, redis_url, AUTH_SECRETS, {}))
    web = create_web_app(WebSettings.model_validate({"OWR_ENV": "test", "REDIS_URL": redis_url}))
    async with running(auth), running(web):
        clock = Clock(START)
        auth.state.mfa.clock = clock
        # The person is at 198.51.100.7 as auth sees them (the gateway's X-Forwarded-For, in production).
        to_auth = httpx.ASGITransport(app=auth, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=to_auth, base_url="http://gateway") as gateway:
            web.state.http = gateway
            transport = httpx.ASGITransport(app=web)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
                browser.headers["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
                yield Site(browser, auth, clock)


async def register(site: Site) -> str:
    email = f"web.mfa.{secrets.token_hex(4)}@example.com"
    r = await site.post("/register", {"email": email, "password": PASSWORD}, token_from="/register")
    assert r.status_code == 303, r.text
    return email


async def sign_in(site: Site, email: str) -> httpx.Response:
    site.web.cookies.clear()
    return await site.post("/login", {"email": email, "password": PASSWORD, "next": "/profile"}, token_from="/login")


async def turn_on(site: Site) -> tuple[str, list[str]]:
    """Set up and enable two-factor sign-in through the pages: (secret, recovery codes)."""
    r = await site.post("/security/2fa/setup", {"password": PASSWORD}, token_from="/security")
    assert r.status_code == 200, r.text
    secret = re.sub(r"\s", "", html.unescape(re.search(r'<code class="secret">([^<]+)</code>', r.text).group(1)))  # type: ignore[union-attr]
    r = await site.post("/security/2fa/enable", {"code": pyotp.TOTP(secret).at(site.clock())}, token_from="/security")
    assert r.status_code == 200, r.text
    codes = re.findall(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>", r.text)
    assert len(codes) == 10
    return secret, codes


async def test_setup_shows_the_qr_code_as_an_image_and_the_key_once(site):
    await register(site)
    r = await site.page("/security")
    assert "Set up two-factor sign-in" in r.text
    assert "img-src 'self' data:" in r.headers["content-security-policy"]
    r = await site.post("/security/2fa/setup", {"password": PASSWORD}, token_from="/security")
    src = re.search(r'<img class="qr" src="data:image/svg\+xml;base64,([^"]+)"', r.text)
    assert src is not None
    svg = base64.b64decode(src.group(1)).decode()
    assert svg.startswith("<svg")
    assert "<script" not in svg
    assert "<svg" not in r.text  # never inlined into the page
    secret = re.sub(r"\s", "", re.search(r'<code class="secret">([^<]+)</code>', r.text).group(1))  # type: ignore[union-attr]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    # The key is on that answer only.
    assert secret[:8] not in (await site.page("/security")).text


async def test_turning_on_shows_ten_recovery_codes_once_and_a_wrong_code_says_so(site):
    await register(site)
    await site.post("/security/2fa/setup", {"password": PASSWORD}, token_from="/security")
    r = await site.post("/security/2fa/enable", {"code": "000000"}, token_from="/security")
    assert r.status_code == 403
    assert "That code is not valid" in r.text
    # A wrong code does not leave the setup behind: a new one starts over.
    secret, codes = await turn_on(site)
    page = (await site.page("/security")).text
    assert "since" in page
    assert "10 of 10 recovery codes left" in page
    assert not any(c in page for c in codes)
    assert secret[:8] not in page


async def test_sign_in_asks_for_the_code_and_the_challenge_never_reaches_the_page(site):
    email = await register(site)
    secret, _ = await turn_on(site)
    r = await sign_in(site, email)
    assert r.status_code == 303
    assert r.headers["location"] == "/login/mfa?next=/profile"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("owr_mfa="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=300" in cookie
    challenge = site.web.cookies["owr_mfa"]
    assert "owr_session" not in site.web.cookies  # no session before the code
    r = await site.page("/login/mfa?next=/profile")
    assert challenge not in r.text
    assert 'autocomplete="one-time-code"' in r.text
    r = await site.post("/login/mfa", {"code": "123456", "next": "/profile"}, token_from="/login/mfa")
    assert r.status_code == 401
    assert "That code is not valid" in r.text
    site.clock.now += 30
    code = pyotp.TOTP(secret).at(site.clock())
    r = await site.post("/login/mfa", {"code": code, "next": "/profile"}, token_from="/login/mfa")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/profile"
    assert "owr_mfa" not in site.web.cookies
    assert email in (await site.page("/profile")).text  # signed in: the header names the person


async def test_a_recovery_code_signs_in_once(site):
    email = await register(site)
    _, codes = await turn_on(site)
    await sign_in(site, email)
    r = await site.post("/login/mfa", {"recovery_code": codes[0].upper()}, token_from="/login/mfa")
    assert r.status_code == 303, r.text
    assert "9 of 10 recovery codes left" in (await site.page("/security")).text
    await sign_in(site, email)
    r = await site.post("/login/mfa", {"recovery_code": codes[0]}, token_from="/login/mfa")
    assert r.status_code == 401


async def test_an_expired_sign_in_goes_back_to_the_password(site):
    email = await register(site)
    secret, _ = await turn_on(site)
    await sign_in(site, email)
    site.clock.now += 301
    r = await site.post("/login/mfa", {"code": pyotp.TOTP(secret).at(site.clock())}, token_from="/login/mfa")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?done=expired"
    assert "took too long" in (await site.page("/login?done=expired")).text
    site.web.cookies.clear()
    r = await site.web.get("/login/mfa")
    assert r.status_code == 303


async def test_turning_off_needs_a_new_code_or_a_recovery_code(site):
    await register(site)
    secret, codes = await turn_on(site)
    used = pyotp.TOTP(secret).at(site.clock())
    r = await site.post("/security/2fa/disable", {"code": used}, token_from="/security")
    assert r.status_code == 403
    r = await site.post("/security/2fa/disable", {"recovery_code": codes[5]}, token_from="/security")
    assert r.status_code == 303
    assert "Two-factor sign-in is off" in (await site.page(r.headers["location"])).text


async def test_setup_asks_for_the_password_again(site):
    await register(site)
    page = (await site.page("/security")).text
    assert 'name="password" type="password" autocomplete="current-password"' in page
    r = await site.post("/security/2fa/setup", {"password": "not my password 12"}, token_from="/security")
    assert r.status_code == 403
    assert "That is not your password" in r.text
    assert '<code class="secret">' not in r.text


async def test_new_recovery_codes_replace_the_old_ones_and_are_shown_once(site):
    email = await register(site)
    secret, old = await turn_on(site)
    page = (await site.page("/security")).text
    assert 'action="/security/2fa/recovery-codes"' in page
    used = pyotp.TOTP(secret).at(site.clock())  # the enabling code
    r = await site.post("/security/2fa/recovery-codes", {"code": used}, token_from="/security")
    assert r.status_code == 403
    assert "That code is not valid" in r.text
    site.clock.now += 30
    r = await site.post(
        "/security/2fa/recovery-codes", {"code": pyotp.TOTP(secret).at(site.clock())}, token_from="/security"
    )
    assert r.status_code == 200, r.text
    assert "the old ones no longer work" in r.text
    new = re.findall(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>", r.text)
    assert len(new) == 10
    assert set(new).isdisjoint(old)
    later = (await site.page("/security")).text
    assert not any(c in later for c in new)  # shown that once
    await sign_in(site, email)
    assert (await site.post("/login/mfa", {"recovery_code": old[0]}, token_from="/login/mfa")).status_code == 401
    assert (await site.post("/login/mfa", {"recovery_code": new[0]}, token_from="/login/mfa")).status_code == 303


async def test_sessions_are_listed_and_can_be_signed_out(site):
    email = await register(site)
    first = dict(site.web.cookies)
    await sign_in(site, email)  # a second browser session
    page = (await site.page("/security")).text
    assert page.count('<tr id="session-') == 2
    assert "Firefox on Linux" in page
    assert "198.51.100.7" in page
    assert "this browser" in page
    # Sign out the other one (the first browser's), then every other, then everywhere.
    ids = re.findall(r'<tr id="session-([0-9a-f-]+)">', page)
    current = re.search(r'<tr id="session-([0-9a-f-]+)">\s*<th scope="row">[^<]*<span class="badge">this browser', page)
    assert current is not None
    other = next(i for i in ids if i != current.group(1))
    r = await site.post(f"/security/sessions/{other}/revoke", {}, token_from="/security")
    assert r.headers["location"] == "/security?done=revoked"
    assert (await site.page("/security")).text.count('<tr id="session-') == 1
    site.web.cookies.clear()
    site.web.cookies.update(first)
    r = await site.web.get("/security")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    await sign_in(site, email)
    r = await site.post("/security/sessions/revoke-all", {"keep": "current"}, token_from="/security")
    assert r.headers["location"] == "/security?done=others_out"
    r = await site.post("/security/sessions/revoke-all", {}, token_from="/security")
    assert r.headers["location"] == "/login?done=everywhere"
    r = await site.web.get("/security")
    assert r.status_code == 303


async def test_the_security_forms_need_the_csrf_token(site):
    await register(site)
    paths = (
        "/security/2fa/setup",
        "/security/2fa/enable",
        "/security/2fa/recovery-codes",
        "/security/sessions/revoke-all",
    )
    for path in paths:
        r = await site.web.post(path, data={"code": "123456"})
        assert r.status_code == 403, path
    r = await site.web.post("/login/mfa", data={"code": "123456"})
    assert r.status_code == 403
