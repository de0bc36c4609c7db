"""Helpers of the teams tests: workspaces, invitations (their mail rendered as the worker would ask) and
members acting in a workspace through a switched session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.invitations import mail
from owr_auth.users.models import User
from tests.auth.conftest import login, register
from tests.support.http import bearer


@dataclass
class Person:
    """A registered user with a session; `access` acts in whichever workspace the last switch chose."""

    id: str
    email: str
    personal: str
    access: str = field(repr=False)
    refresh: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access)


async def person(client: httpx.AsyncClient, email: str | None = None) -> Person:
    user = await register(client, email)
    pair = await login(client, user["email"])
    return Person(user["id"], user["email"], user["workspace"]["id"], pair["access_token"], pair["refresh_token"])


async def verified(session: AsyncSession, who: Person) -> Person:
    """`who` with a verified address, which accepting an invitation needs (the emailed link itself is
    test_email_verification.py's)."""
    await session.execute(update(User).where(User.id == uuid.UUID(who.id)).values(email_verified_at=func.now()))
    return who


async def switch(client: httpx.AsyncClient, who: Person, workspace_id: str) -> Person:
    r = await client.post("/api/v1/auth/switch", headers=who.headers, json={"workspace_id": workspace_id})
    assert r.status_code == 200, r.text
    who.access, who.refresh = r.json()["access_token"], r.json()["refresh_token"]
    return who


async def new_workspace(client: httpx.AsyncClient, owner: Person, name: str = "Team") -> str:
    r = await client.post("/api/v1/workspaces", headers=owner.headers, json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def invitation_token(session: AsyncSession, app: FastAPI, invitation_id: str) -> str:
    """Render the invitation's mail as the sending worker would, and read the token from its link."""
    rendered = await mail.render(session, app.state.settings, uuid.UUID(invitation_id))
    assert rendered is not None
    link = next(line for line in rendered.text.splitlines() if "/invite?token=" in line)
    return link.split("token=", 1)[1]


async def invite(
    client: httpx.AsyncClient, inviter: Person, workspace_id: str, email: str, role: str = "member"
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/workspaces/{workspace_id}/invitations", headers=inviter.headers, json={"email": email, "role": role}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def join(
    client: httpx.AsyncClient,
    session: AsyncSession,
    app: FastAPI,
    inviter: Person,
    workspace_id: str,
    member: Person,
    role: str,
) -> Person:
    """`member` joins through an invitation with `role`, and switches their session to the workspace."""
    invitation = await invite(client, inviter, workspace_id, member.email, role)
    token = await invitation_token(session, app, invitation["id"])
    await verified(session, member)
    r = await client.post("/api/v1/invitations/accept", headers=member.headers, json={"token": token})
    assert r.status_code == 200, r.text
    return await switch(client, member, workspace_id)


async def team(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, *roles: str
) -> tuple[str, Person, list[Person]]:
    """A workspace owned by a new person, with one more person per role, each switched into it."""
    owner = await person(client)
    workspace_id = await new_workspace(client, owner)
    await switch(client, owner, workspace_id)
    members = [await join(client, session, app, owner, workspace_id, await person(client), role) for role in roles]
    return workspace_id, owner, members
