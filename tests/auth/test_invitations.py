"""Invitations (issue 16): an admin invites an email with a role; the token is minted when the mail is
rendered, stored as a hash, never in an API response; it works once, for 7 days, until revoked, and only
for the account of the invited address."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from owr_auth.invitations import mail
from owr_auth.invitations.models import Invitation
from tests.auth.teams import Person, invitation_token, invite, person, switch, team, verified
from tests.support.http import assert_problem


async def accept(client: httpx.AsyncClient, who: Person, token: str) -> httpx.Response:
    return await client.post("/api/v1/invitations/accept", headers=who.headers, json={"token": token})


async def test_an_invitation_mails_a_one_time_link_and_joins_with_its_role(client, db_session, shared_app):
    team_id, owner, _ = await team(client, db_session, shared_app)
    bob = await verified(db_session, await person(client))
    created = await invite(client, owner, team_id, bob.email.upper(), "viewer")
    assert (created["email"], created["role"], created["status"]) == (bob.email, "viewer", "pending")
    assert "token" not in str(created).lower()
    expires = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(created["created_at"])
    assert expires == timedelta(days=7)

    rendered = await mail.render(db_session, shared_app.state.settings, uuid.UUID(created["id"]))
    assert rendered is not None
    assert rendered.to == bob.email
    assert "Team" in rendered.subject
    link = next(line for line in rendered.text.splitlines() if "/invite?token=" in line)
    assert link.startswith("http://localhost:8000/invite?token=owri_")
    token = link.split("token=", 1)[1]
    assert token not in repr(rendered)
    stored = (
        await db_session.execute(select(Invitation.token_hash).where(Invitation.id == uuid.UUID(created["id"])))
    ).scalar_one()
    assert stored == hashlib.sha256(token.encode()).digest()
    listed = (await client.get(f"/api/v1/workspaces/{team_id}/invitations", headers=owner.headers)).json()
    assert [i["email"] for i in listed["items"]] == [bob.email]
    assert token not in str(listed)

    r = await accept(client, bob, token)
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["role"], r.json()["name"]) == (team_id, "viewer", "Team")
    await switch(client, bob, team_id)
    assert_problem(await accept(client, bob, token), 404)  # once
    assert (await client.get(f"/api/v1/workspaces/{team_id}/invitations", headers=owner.headers)).json()["total"] == 0


async def test_only_the_invited_address_accepts(client, db_session, shared_app):
    team_id, owner, _ = await team(client, db_session, shared_app)
    bob, mallory = await verified(db_session, await person(client)), await person(client)
    created = await invite(client, owner, team_id, bob.email)
    token = await invitation_token(db_session, shared_app, created["id"])
    body = assert_problem(await accept(client, mallory, token), 403)
    assert body["type"].endswith("/invitation-for-another-email")
    assert (await accept(client, bob, token)).status_code == 200


async def test_revoked_expired_replaced_and_unknown_tokens_are_404(client, db_session, shared_app):
    team_id, owner, _ = await team(client, db_session, shared_app)
    bob = await person(client)
    first = await invite(client, owner, team_id, bob.email)
    first_token = await invitation_token(db_session, shared_app, first["id"])
    # Inviting the address again replaces the open invitation: the first link stops working.
    second = await invite(client, owner, team_id, bob.email, "admin")
    assert_problem(await accept(client, bob, first_token), 404)
    # A second render replaces the token too (only the latest mail's link works).
    stale = await invitation_token(db_session, shared_app, second["id"])
    token = await invitation_token(db_session, shared_app, second["id"])
    assert_problem(await accept(client, bob, stale), 404)

    r = await client.delete(f"/api/v1/workspaces/{team_id}/invitations/{second['id']}", headers=owner.headers)
    assert r.status_code == 204
    assert_problem(await accept(client, bob, token), 404)
    assert await mail.render(db_session, shared_app.state.settings, uuid.UUID(second["id"])) is None
    assert_problem(
        await client.delete(f"/api/v1/workspaces/{team_id}/invitations/{second['id']}", headers=owner.headers), 404
    )

    third = await invite(client, owner, team_id, bob.email)
    token = await invitation_token(db_session, shared_app, third["id"])
    await db_session.execute(
        update(Invitation)
        .where(Invitation.id == uuid.UUID(third["id"]))
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    assert_problem(await accept(client, bob, token), 404)
    for bad in ("", "owri_x", "owri_" + "A" * 43, "nope" * 20):
        r = await accept(client, bob, bad)
        assert r.status_code in (404, 422), r.text


async def test_who_may_invite_and_whom(client, db_session, shared_app):
    team_id, _owner, (admin, member) = await team(client, db_session, shared_app, "admin", "member")
    url = f"/api/v1/workspaces/{team_id}/invitations"
    assert_problem(
        await client.post(url, headers=member.headers, json={"email": "x@example.com", "role": "viewer"}), 403
    )
    assert_problem(await client.get(url, headers=member.headers), 403)
    assert_problem(await client.post(url, headers=admin.headers, json={"email": "x@example.com", "role": "owner"}), 422)
    assert_problem(await client.post(url, headers=admin.headers, json={"email": "not an email", "role": "viewer"}), 422)
    body = assert_problem(
        await client.post(url, headers=admin.headers, json={"email": member.email, "role": "viewer"}), 409
    )
    assert body["type"].endswith("/already-member")
    outsider = await person(client)
    assert_problem(await client.post(url, headers=outsider.headers, json={"email": "x@example.com"}), 404)
    r = await client.post(url, headers=admin.headers, json={"email": "x@example.com", "role": "admin"})
    assert r.status_code == 201


async def test_open_invitations_are_capped(app_factory, db_session):
    async with app_factory(invitations_open_max=2) as client:
        owner = await person(client)
        for n in range(2):
            await invite(client, owner, owner.personal, f"guest{n}@example.com")
        r = await client.post(
            f"/api/v1/workspaces/{owner.personal}/invitations",
            headers=owner.headers,
            json={"email": "guest3@example.com"},
        )
        assert assert_problem(r, 409)["type"].endswith("/too-many-invitations")


async def test_an_invitation_to_a_deleted_workspace_is_404(client, db_session, shared_app, keys_stub):
    team_id, owner, _ = await team(client, db_session, shared_app)
    bob = await person(client)
    created = await invite(client, owner, team_id, bob.email)
    token = await invitation_token(db_session, shared_app, created["id"])
    assert (await client.delete(f"/api/v1/workspaces/{team_id}", headers=owner.headers)).status_code == 204
    assert_problem(await accept(client, bob, token), 404)
