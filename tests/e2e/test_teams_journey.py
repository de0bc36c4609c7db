"""Issue 16's teams journey through the real gateway and services: alice invites bob as a viewer; bob
registers, sees alice's keys and usage and cannot add a key (403); alice makes him an admin and he adds
one; alice removes him, and his old access token and his API token stop working within one second.

The invitation's link comes from its email (the `mail_inbox` SMTP server) once auth's mail path sends it
(`owr_auth.mail`); until then it is rendered from the database as the sending worker would ask for it.
"""

from __future__ import annotations

import asyncio
import email.message
import importlib.util
import re
import secrets
import time
import uuid

import httpx
import pytest

from owr_auth.invitations import mail
from owr_auth.settings import AuthSettings
from owr_shared.db import create_engine, create_sessionmaker, transaction
from tests.e2e.conftest import System
from tests.e2e.test_account_email_journey import emailed_link
from tests.e2e.test_journey import PASSWORD, problem
from tests.support.mail import Inbox

pytestmark = pytest.mark.e2e

MAIL_PATH = importlib.util.find_spec("owr_auth.mail") is not None
LINK = re.compile(r"https?://\S+/invite\?token=(owri_[A-Za-z0-9_\-%]+)")


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _person(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    address = f"{name}.{secrets.token_hex(4)}@example.com"
    assert (
        await client.post("/api/v1/auth/register", json={"email": address, "password": PASSWORD})
    ).status_code == 201
    r = await client.post("/api/v1/auth/login", json={"email": address, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return address, r.json()


def _text(message: email.message.Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    texts = [p.get_payload(decode=True) for p in parts if p.get_content_type() == "text/plain"]
    return "".join(t.decode("utf-8") for t in texts if isinstance(t, bytes))


async def _invitation_token(system: System, inbox: Inbox, invitation_id: str, address: str) -> str:
    if MAIL_PATH:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for message in inbox.messages:
                if message["To"] and address in message["To"]:
                    found = LINK.search(_text(message))
                    assert found, _text(message)
                    return found.group(1)
            await asyncio.sleep(0.2)
        raise AssertionError(f"no invitation email reached {address}")
    engine = create_engine(system.env["DATABASE_URL"], pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            settings = AuthSettings(OWR_ENV="test", AUTH_API_TOKEN_PEPPER="x" * 32)
            rendered = await mail.render(session, settings, uuid.UUID(invitation_id))
    finally:
        await engine.dispose()
    assert rendered is not None
    found = LINK.search(rendered.text)
    assert found, rendered.text
    return found.group(1)


async def _refused_within_a_second(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 1.0
    while True:
        r = await client.get("/api/v1/keys", headers=headers)
        if r.status_code in (401, 404):
            return
        assert time.monotonic() < deadline, f"still {r.status_code} a second after the removal"
        await asyncio.sleep(0.05)


async def test_a_viewer_invited_promoted_and_removed(system: System, mail_inbox: Inbox):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        _, alice = await _person(client, "alice")
        alice_headers = _bearer(alice["access_token"])
        me = (await client.get("/api/v1/auth/me", headers=alice_headers)).json()
        workspace = me["workspace"]["id"]
        r = await client.post(
            "/api/v1/keys", headers=alice_headers, json={"name": "alice's", "key": "sk-or-v1-" + secrets.token_hex(32)}
        )
        assert r.status_code == 201, r.text

        bob_address = f"bob.{secrets.token_hex(4)}@example.com"
        r = await client.post(
            f"/api/v1/workspaces/{workspace}/invitations",
            headers=alice_headers,
            json={"email": bob_address, "role": "viewer"},
        )
        assert r.status_code == 201, r.text
        assert "token" not in r.text
        token = await _invitation_token(system, mail_inbox, r.json()["id"], bob_address)

        # Bob registers from the link, accepts, and switches to alice's workspace.
        assert (
            await client.post("/api/v1/auth/register", json={"email": bob_address, "password": PASSWORD})
        ).status_code == 201
        bob = (await client.post("/api/v1/auth/login", json={"email": bob_address, "password": PASSWORD})).json()
        # Accepting needs a verified address: bob first follows the link of his registration email.
        _, verify = await emailed_link(mail_inbox, bob_address, "Verify your email address")
        assert (await client.post("/api/v1/auth/verify-email", json={"token": verify})).status_code == 204
        r = await client.post("/api/v1/invitations/accept", headers=_bearer(bob["access_token"]), json={"token": token})
        assert r.status_code == 200, r.text
        bob = (
            await client.post(
                "/api/v1/auth/switch", headers=_bearer(bob["access_token"]), json={"workspace_id": workspace}
            )
        ).json()
        bob_headers = _bearer(bob["access_token"])

        keys = (await client.get("/api/v1/keys", headers=bob_headers)).json()
        assert [k["name"] for k in keys["items"]] == ["alice's"]
        assert (await client.get("/api/v1/usage/summary", headers=bob_headers)).status_code == 200
        new_key = {"name": "bob's", "key": "sk-or-v1-" + secrets.token_hex(32)}
        problem(await client.post("/api/v1/keys", headers=bob_headers, json=new_key), 403)

        # Alice makes bob an admin; from his next refresh he adds a key.
        bob_id = await _user_id(client, bob_headers)
        r = await client.patch(
            f"/api/v1/workspaces/{workspace}/members/{bob_id}", headers=alice_headers, json={"role": "admin"}
        )
        assert r.status_code == 200, r.text
        bob = (await client.post("/api/v1/auth/refresh", json={"refresh_token": bob["refresh_token"]})).json()
        bob_headers = _bearer(bob["access_token"])
        assert (await client.post("/api/v1/keys", headers=bob_headers, json=new_key)).status_code == 201
        r = await client.post("/api/v1/tokens", headers=bob_headers, json={"name": "bob's script"})
        assert r.status_code == 201, r.text
        api_token = _bearer(r.json()["token"])
        assert (await client.get("/api/v1/keys", headers=api_token)).status_code == 200  # cached at the gateway

        # Alice removes bob: his access token and his API token stop within a second.
        r = await client.delete(f"/api/v1/workspaces/{workspace}/members/{bob_id}", headers=alice_headers)
        assert r.status_code == 204, r.text
        await _refused_within_a_second(client, bob_headers)
        await _refused_within_a_second(client, api_token)
        # Alice's own access is untouched.
        assert (await client.get("/api/v1/keys", headers=alice_headers)).status_code == 200


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await client.get("/api/v1/auth/me", headers=headers)).json()["id"])
