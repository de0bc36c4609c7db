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


async def test_verify_then_reset_the_password_by_email_once_and_never_twice(system: System, mail_inbox: Inbox):
    email = f"mailed.{secrets.token_hex(5)}@example.com"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        assert (
            await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        pair = (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
        session = {"authorization": f"Bearer {pair['access_token']}"}
        assert (await client.get("/api/v1/auth/me", headers=session)).json()["email_verified"] is False

        page, verify_token = await emailed_link(mail_inbox, email, "Verify your email address")
        assert urlsplit(page).path == "/verify-email"
        verified = await client.get("/verify-email", params={"token": verify_token})  # the web page, via the gateway
        assert verified.status_code == 200
        assert "Your email address is verified" in verified.text
        assert (await client.get("/api/v1/auth/me", headers=session)).json()["email_verified"] is True

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
