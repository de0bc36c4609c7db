"""Issue 16's "done means", the email half: every process real, the worker sending through a real SMTP sink.

register -> the verification email arrives -> its link (the web page, through the gateway) verifies the
address -> a password reset by email works once and never twice, ends the old session and API token, and
no token is left in any process's log.
"""

from __future__ import annotations

import re
import secrets
from email.message import Message
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.test_journey import PASSWORD, problem
from tests.e2e.test_sync_journey import wait_for
from tests.support.mail import Inbox

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "reset through the mail sink 15"
LINK = re.compile(r"(https?://[^\s?]+)\?token=([A-Za-z0-9_-]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return bytes(part.get_payload(decode=True)).decode()
    raise AssertionError("no text part")


async def emailed_link(inbox: Inbox, email: str, subject: str) -> tuple[str, str]:
    """The (page URL, token) of the newest mail to `email` with `subject`, once the worker has sent it."""

    async def arrived() -> tuple[str, str] | None:
        for message in reversed(inbox.messages):
            if message["To"] == email and message["Subject"] == subject:
                found = LINK.search(text_of(message))
                assert found is not None, "a mail without its link"
                return found.group(1), found.group(2)
        return None

    found: tuple[str, str] = await wait_for(arrived, seconds=30, what=f"the {subject!r} mail")
    return found


async def verified_sign_up(client: httpx.AsyncClient, inbox: Inbox, prefix: str = "verified") -> dict[str, str]:
    """A new account whose address is verified with the emailed link (the API's half of the page's button),
    signed in after it: its access token says so, as channels need."""
    email = f"{prefix}.{secrets.token_hex(5)}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    _, token = await emailed_link(inbox, email, "Verify your email address")
    r = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 204, r.text
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


async def test_verify_then_reset_the_password_by_email_once_and_never_twice(system: System, mail_inbox: Inbox):
    email = f"mailed.{secrets.token_hex(5)}@example.com"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        assert (
            await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        pair = (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
        session = {"authorization": f"Bearer {pair['access_token']}"}
        assert (await client.get("/api/v1/auth/me", headers=session)).json()["email_verified"] is False

        # Unverified: alerts cannot go anywhere yet.
        on_call = {"type": "email", "name": "me", "email": email}
        refused = problem(await client.post("/api/v1/channels", headers=session, json=on_call), 403)
        assert refused["type"].endswith("/email-not-verified")

        page, verify_token = await emailed_link(mail_inbox, email, "Verify your email address")
        assert urlsplit(page).path == "/verify-email"
        # The web page, via the gateway: opening the link (as a mail scanner would) uses nothing; the button does.
        opened = await client.get("/verify-email", params={"token": verify_token})
        assert opened.status_code == 200
        assert (await client.get("/api/v1/auth/me", headers=session)).json()["email_verified"] is False
        csrf = CSRF.search(opened.text)
        assert csrf is not None
        form = {"token": verify_token, "csrf_token": csrf.group(1)}
        verified = await client.post("/verify-email", data=form)
        assert verified.status_code == 200
        assert "Your email address is verified" in verified.text
        assert (await client.get("/api/v1/auth/me", headers=session)).json()["email_verified"] is True

        # The token minted before still says unverified; the refreshed one lets alerts go out.
        problem(await client.post("/api/v1/channels", headers=session, json=on_call), 403)
        pair = (await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
        session = {"authorization": f"Bearer {pair['access_token']}"}
        r = await client.post("/api/v1/channels", headers=session, json=on_call)
        assert r.status_code == 201, r.text
        channel = f"/api/v1/channels/{r.json()['id']}"
        # Its own verified address still confirms as an alert channel (double opt-in): the page's button, once.
        assert problem(await client.post(f"{channel}/test", headers=session), 409)["type"].endswith(
            "/email-not-confirmed"
        )
        page, confirm_token = await emailed_link(
            mail_inbox, email, "[OpenRouter Watcher] Confirm that this address should receive alerts"
        )
        assert urlsplit(page).path == "/confirm-email-channel"
        opened = await client.get("/confirm-email-channel", params={"token": confirm_token})
        assert opened.status_code == 200
        assert (await client.get(channel, headers=session)).json()["confirmation"] == "pending"
        csrf = CSRF.search(opened.text)
        assert csrf is not None
        confirmed = await client.post(
            "/confirm-email-channel", data={"token": confirm_token, "csrf_token": csrf.group(1)}
        )
        assert confirmed.status_code == 200, confirmed.text
        assert (await client.get(channel, headers=session)).json()["confirmation"] == "confirmed"
        assert (await client.post(f"{channel}/test", headers=session)).status_code == 202
        assert (await client.patch(channel, headers=session, json={"enabled": False})).status_code == 200
        assert (await client.patch(channel, headers=session, json={"enabled": True})).status_code == 200

        api_token = (await client.post("/api/v1/tokens", headers=session, json={"name": "script"})).json()["token"]
        assert (await client.get("/api/v1/keys", headers={"authorization": f"Bearer {api_token}"})).status_code == 200

        # Unknown and known addresses get the same answer; only the known one gets mail.
        stranger = await client.post(
            "/api/v1/auth/password-reset", json={"email": f"x.{secrets.token_hex(4)}@example.com"}
        )
        asked = await client.post("/api/v1/auth/password-reset", json={"email": email})
        assert (stranger.status_code, asked.status_code) == (202, 202)
        assert stranger.content == asked.content
        page, token = await emailed_link(mail_inbox, email, "Reset your password")
        assert urlsplit(page).path == "/reset-password"

        confirm = {"token": token, "new_password": NEW_PASSWORD}
        assert (await client.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 204
        # Every session and API token ended, at the gateway at once.
        problem(await client.get("/api/v1/keys", headers=session), 401)
        problem(await client.get("/api/v1/keys", headers={"authorization": f"Bearer {api_token}"}), 401)
        problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
        # Once, never twice.
        again = await client.post("/api/v1/auth/password-reset/confirm", json={**confirm, "new_password": PASSWORD})
        problem(again, 410)
        problem(await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}), 401)
        assert (
            await client.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
        ).status_code == 200

    logs = system.logs()
    assert "auth_mail_sent" in logs
    for secret in (verify_token, token, NEW_PASSWORD):
        assert secret not in logs
        assert secret[5:] not in logs
