"""The pages of the emailed links, web in-process in front of the real auth (served over HTTP, on the session's
database): forgot password, reset password, verify email, and the verification banner with its resend.

The mails are rendered as the worker renders them (`POST /internal/mail/{id}/render`); the browser journey
with a real SMTP sink is tests/e2e/test_account_email_journey.py.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from owr_web.app import create_app as create_web_app
from owr_web.sessions.service import token_claims
from owr_web.settings import WebSettings
from tests.auth.conftest import PASSWORD, basic
from tests.support.apps import running
from tests.support.served_auth import ServedAuth, mail_client, served_auth

MAILER_SECRET = "web-tests-mailer-secret-" + "t6" * 16
NEW_PASSWORD = "reset from the web page 13"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TOKEN_FIELD = re.compile(r'name="token" value="([^"]*)"')
_LINK_TOKEN = re.compile(r"\?token=([A-Za-z0-9_-]+)")


@dataclass
class Stack:
    served: ServedAuth
    web: httpx.AsyncClient
    app: FastAPI

    @property
    def auth(self) -> httpx.AsyncClient:
        return self.served.http

    async def pending_mail(self, email: str, kind: str) -> str:
        """The newest pending mail of `kind` to `email`, rendered as the worker would: its link's token."""
        engine = self.served.app.state.engine
        async with engine.connect() as conn:
            mail_id = (
                await conn.execute(
                    text(
                        "SELECT id FROM auth.outbound_mail WHERE recipient = :email AND kind = :kind"
                        " AND status = 'pending' ORDER BY created_at DESC LIMIT 1"
                    ),
                    {"email": email, "kind": kind},
                )
            ).scalar_one()
        r = await self.auth.post(f"/internal/mail/{mail_id}/render", headers=basic("mailer", MAILER_SECRET))
        assert r.status_code == 200, r.text
        found = _LINK_TOKEN.search(r.json()["text"])
        assert found is not None
        return found.group(1)


@pytest.fixture
async def stack(database_url: str, redis_url: str, redis_client: Any) -> AsyncIterator[Stack]:
    async with served_auth(database_url, redis_url, clients={"mailer": mail_client(MAILER_SECRET)}) as auth:
        web_settings = WebSettings.model_validate({"OWR_ENV": "test", "REDIS_URL": redis_url, "gateway_url": auth.url})
        app = create_web_app(web_settings)
        async with running(app) as web:
            yield Stack(auth, web, app)


def csrf(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


async def register(stack: Stack) -> str:
    email = f"web.{secrets.token_hex(5)}@example.com"
    r = await stack.auth.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


async def test_forgot_password_says_the_same_for_any_address(stack):
    known = await register(stack)
    page = await stack.web.get("/forgot-password")
    assert page.status_code == 200
    assert "<title>Forgot your password" in page.text
    token = csrf(page)
    answers = []
    for email in (known, f"nobody.{secrets.token_hex(4)}@example.com"):
        r = await stack.web.post("/forgot-password", data={"email": email, "csrf_token": token})
        assert r.status_code == 303
        answers.append(r.headers["location"])
    assert answers == ["/forgot-password?sent=1"] * 2
    sent = await stack.web.get("/forgot-password?sent=1")
    assert "If an account uses the address you entered" in sent.text


async def test_forgot_password_needs_the_forms_csrf_token(stack):
    await stack.web.get("/forgot-password")
    r = await stack.web.post("/forgot-password", data={"email": "a@example.com", "csrf_token": "forged"})
    assert r.status_code == 403


async def test_the_reset_page_sets_the_password_once(stack):
    email = await register(stack)
    page = await stack.web.get("/forgot-password")
    await stack.web.post("/forgot-password", data={"email": email, "csrf_token": csrf(page)})
    token = await stack.pending_mail(email, "password_reset")

    form = await stack.web.get("/reset-password", params={"token": token})
    assert form.status_code == 200
    assert _TOKEN_FIELD.search(form.text).group(1) == token  # type: ignore[union-attr]
    refused = await stack.web.post(
        "/reset-password", data={"token": token, "new_password": "short", "csrf_token": csrf(form)}
    )
    assert refused.status_code == 422
    assert "at least 12 characters" in refused.text
    assert _TOKEN_FIELD.search(refused.text).group(1) == token  # type: ignore[union-attr]

    done = await stack.web.post(
        "/reset-password", data={"token": token, "new_password": NEW_PASSWORD, "csrf_token": csrf(form)}
    )
    assert (done.status_code, done.headers["location"]) == (303, "/login?done=reset")
    assert "Your new password is set" in (await stack.web.get("/login?done=reset")).text
    login = await stack.auth.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert login.status_code == 200

    again = await stack.web.post(
        "/reset-password", data={"token": token, "new_password": "another one entirely 14", "csrf_token": csrf(form)}
    )
    assert again.status_code == 410
    assert "expired or has been used" in again.text
    assert 'name="new_password"' not in again.text


async def test_a_reset_link_without_a_token_says_so(stack):
    page = await stack.web.get("/reset-password")
    assert page.status_code == 400
    assert "not valid" in page.text
    assert 'href="/forgot-password"' in page.text


async def test_the_banner_resends_and_the_link_verifies(stack):
    register_page = await stack.web.get("/register")
    email = f"web.{secrets.token_hex(5)}@example.com"
    created = await stack.web.post(
        "/register", data={"email": email, "password": PASSWORD, "csrf_token": csrf(register_page)}
    )
    assert created.status_code == 303  # signed in
    profile = await stack.web.get("/profile")
    assert "Please verify your email address" in profile.text
    assert "not verified yet" in profile.text

    resent = await stack.web.post("/verify-email/resend", data={"csrf_token": csrf(profile)})
    assert (resent.status_code, resent.headers["location"]) == (303, "/verify-email?sent=1")
    assert "We sent a new link" in (await stack.web.get("/verify-email?sent=1")).text
    forged = await stack.web.post("/verify-email/resend", data={"csrf_token": "forged"})
    assert forged.status_code == 403

    token = await stack.pending_mail(email, "verify_email")
    session_id = stack.web.cookies["owr_session"]
    before = await stack.app.state.sessions.load(session_id)
    assert token_claims(before.access_token)["email_verified"] is False
    # Opening the link (or a mail scanner fetching it) uses nothing: the page asks for a press of its button.
    for _ in range(2):
        opened = await stack.web.get("/verify-email", params={"token": token})
        assert opened.status_code == 200
        assert _TOKEN_FIELD.search(opened.text).group(1) == token  # type: ignore[union-attr]
        assert "Verify my email address" in opened.text
    assert "Please verify your email address" in (await stack.web.get("/profile")).text

    forged = await stack.web.post("/verify-email", data={"token": token, "csrf_token": "forged"})
    assert forged.status_code == 403
    verified = await stack.web.post("/verify-email", data={"token": token, "csrf_token": csrf(opened)})
    assert verified.status_code == 200
    assert "Your email address is verified" in verified.text
    # The session took a new token pair at once: the services see the verified address from the next call.
    after = await stack.app.state.sessions.load(session_id)
    assert after.refresh_token != before.refresh_token
    assert token_claims(after.access_token)["email_verified"] is True
    assert after.email_verified is True
    profile = await stack.web.get("/profile")
    assert "Please verify your email address" not in profile.text
    assert "(verified)" in profile.text
    again = await stack.web.post("/verify-email", data={"token": token, "csrf_token": csrf(opened)})
    assert again.status_code == 410
    assert "expired or has been used" in again.text


async def test_a_bad_verification_link_says_so(stack):
    for params in ({}, {"token": "y" * 300}):
        page = await stack.web.get("/verify-email", params=params)
        assert page.status_code == 400
        assert "not valid" in page.text
    unknown = "owrv_" + "x" * 43
    page = await stack.web.get("/verify-email", params={"token": unknown})  # only the press asks auth
    assert page.status_code == 200
    pressed = await stack.web.post("/verify-email", data={"token": unknown, "csrf_token": csrf(page)})
    assert pressed.status_code == 400
    assert "not valid" in pressed.text


async def test_no_token_on_the_pages_but_the_form_that_sends_it_back(stack):
    email = await register(stack)
    page = await stack.web.get("/forgot-password")
    await stack.web.post("/forgot-password", data={"email": email, "csrf_token": csrf(page)})
    token = await stack.pending_mail(email, "password_reset")
    form = await stack.web.get("/reset-password", params={"token": token})
    assert form.text.count(token) == 1
    assert form.headers["cache-control"] == "no-store"


async def test_a_verification_made_elsewhere_reaches_the_session_on_the_profile_page(stack):
    """Verified through the API (another browser, a script): `/profile` reads it from `/me`, the banner goes, and
    the session takes a token that says so, so the channels work without waiting for the next refresh."""
    register_page = await stack.web.get("/register")
    email = f"web.{secrets.token_hex(5)}@example.com"
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf(register_page)}
    assert (await stack.web.post("/register", data=data)).status_code == 303
    session_id = stack.web.cookies["owr_session"]
    token = await stack.pending_mail(email, "verify_email")
    assert (await stack.auth.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 204
    before = await stack.app.state.sessions.load(session_id)
    assert token_claims(before.access_token)["email_verified"] is False
    profile = await stack.web.get("/profile")
    assert "Please verify your email address" not in profile.text
    after = await stack.app.state.sessions.load(session_id)
    assert token_claims(after.access_token)["email_verified"] is True
    assert after.email_verified is True
