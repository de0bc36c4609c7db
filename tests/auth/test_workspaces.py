"""Workspaces (issue 16): made by anyone (its owner), listed with the caller's role, renamed by an admin,
switched to (a token pair acting there), deleted by the owner with every service's data, transferred."""

from __future__ import annotations

import uuid

import jwt
from sqlalchemy import select

from owr_auth.workspaces.models import Membership, Workspace
from tests.auth.teams import join, new_workspace, person, switch, team
from tests.support.http import assert_problem, bearer


def claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_a_new_workspace_is_owned_by_its_creator_and_listed_with_roles(client):
    alice = await person(client)
    r = await client.post("/api/v1/workspaces", headers=alice.headers, json={"name": "  Acme team  "})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["name"], created["role"], created["personal"]) == ("Acme team", "owner", False)

    listed = (await client.get("/api/v1/workspaces", headers=alice.headers)).json()
    assert listed["total"] == 2
    assert [(w["name"], w["role"], w["personal"]) for w in listed["items"]] == [
        ("Personal", "owner", True),
        ("Acme team", "owner", False),
    ]
    for body in ({"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "a\nb"}, {}):
        assert_problem(await client.post("/api/v1/workspaces", headers=alice.headers, json=body), 422)


async def test_owning_is_capped(app_factory):
    async with app_factory(workspaces_per_user_max=2) as client:
        alice = await person(client)
        await new_workspace(client, alice)
        body = assert_problem(await client.post("/api/v1/workspaces", headers=alice.headers, json={"name": "3"}), 409)
        assert body["type"].endswith("/too-many-workspaces")


async def test_switch_gives_a_pair_acting_there_and_refresh_stays_there(client):
    alice = await person(client)
    team_id = await new_workspace(client, alice)
    old_refresh = alice.refresh
    await switch(client, alice, team_id)
    assert (claims(alice.access)["wid"], claims(alice.access)["role"]) == (team_id, "owner")
    me = (await client.get("/api/v1/auth/me", headers=alice.headers)).json()
    assert me["workspace"]["id"] == team_id

    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh})
    assert claims(r.json()["access_token"])["wid"] == team_id
    # The pre-switch refresh token was retired: presenting it is reuse, which ends the session.
    assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": old_refresh}), 401)
    assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": r.json()["refresh_token"]}), 401)


async def test_switch_to_a_workspace_you_are_not_in_is_404(client):
    alice, bob = await person(client), await person(client)
    for target in (bob.personal, str(uuid.uuid4())):
        body = assert_problem(
            await client.post("/api/v1/auth/switch", headers=alice.headers, json={"workspace_id": target}), 404
        )
        assert body["type"].endswith("/workspace-not-found")


async def test_rename_needs_an_admin_and_membership(client, db_session, shared_app):
    team_id, _owner, (admin, member) = await team(client, db_session, shared_app, "admin", "member")
    outsider = await person(client)
    r = await client.patch(f"/api/v1/workspaces/{team_id}", headers=admin.headers, json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["role"]) == ("Renamed", "admin")
    body = assert_problem(
        await client.patch(f"/api/v1/workspaces/{team_id}", headers=member.headers, json={"name": "x"}), 403
    )
    assert body["type"].endswith("/role-too-low")
    assert_problem(
        await client.patch(f"/api/v1/workspaces/{team_id}", headers=outsider.headers, json={"name": "x"}), 404
    )


async def test_the_owner_deletes_a_workspace_with_its_data_everywhere(client, db_session, shared_app, keys_stub):
    team_id, owner, (member,) = await team(client, db_session, shared_app, "member")
    assert_problem(await client.delete(f"/api/v1/workspaces/{team_id}", headers=member.headers), 403)
    assert not keys_stub.calls

    r = await client.delete(f"/api/v1/workspaces/{team_id}", headers=owner.headers)
    assert r.status_code == 204, r.text
    assert [call.path for call in keys_stub.calls] == [f"/internal/workspaces/{team_id}"]
    assert await db_session.get(Workspace, uuid.UUID(team_id)) is None
    # Its members' tokens for it stop working; their sessions move to their own workspace.
    assert_problem(await client.get("/api/v1/auth/me", headers=member.headers), 401)
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh})
    assert claims(r.json()["access_token"])["wid"] == member.personal
    listed = (await client.get("/api/v1/workspaces", headers=bearer(r.json()["access_token"]))).json()
    assert [w["id"] for w in listed["items"]] == [member.personal]


async def test_a_deletion_a_peer_could_not_finish_is_202_and_left_for_the_sweep(
    client, db_session, shared_app, keys_stub
):
    team_id, owner, _ = await team(client, db_session, shared_app)
    keys_stub.status = 503
    r = await client.delete(f"/api/v1/workspaces/{team_id}", headers=owner.headers)
    assert r.status_code == 202, r.text
    workspace = await db_session.get(Workspace, uuid.UUID(team_id), populate_existing=True)
    assert workspace is not None
    assert workspace.deleted_at is not None
    assert_problem(await client.delete(f"/api/v1/workspaces/{team_id}", headers=owner.headers), 401)


async def test_a_personal_workspace_is_neither_deleted_nor_transferred(client, db_session, shared_app, keys_stub):
    alice = await person(client)
    body = assert_problem(await client.delete(f"/api/v1/workspaces/{alice.personal}", headers=alice.headers), 409)
    assert body["type"].endswith("/personal-workspace")
    bob = await person(client)
    await join(client, db_session, shared_app, alice, alice.personal, bob, "admin")
    await switch(client, alice, alice.personal)
    r = await client.post(
        f"/api/v1/workspaces/{alice.personal}/transfer", headers=alice.headers, json={"user_id": bob.id}
    )
    assert_problem(r, 409)
    assert not keys_stub.calls


async def test_transfer_makes_the_target_owner_and_the_owner_an_admin(client, db_session, shared_app, redis_client):
    team_id, owner, (admin, member) = await team(client, db_session, shared_app, "admin", "member")
    url = f"/api/v1/workspaces/{team_id}/transfer"
    assert_problem(await client.post(url, headers=admin.headers, json={"user_id": member.id}), 403)
    assert_problem(await client.post(url, headers=owner.headers, json={"user_id": owner.id}), 409)
    assert_problem(await client.post(url, headers=owner.headers, json={"user_id": str(uuid.uuid4())}), 404)

    r = await client.post(url, headers=owner.headers, json={"user_id": member.id})
    assert r.status_code == 200, r.text
    assert (r.json()["user_id"], r.json()["role"]) == (member.id, "owner")
    roles = dict(
        (
            await db_session.execute(
                select(Membership.user_id, Membership.role).where(Membership.workspace_id == uuid.UUID(team_id))
            )
        ).all()
    )
    assert roles == {uuid.UUID(owner.id): "admin", uuid.UUID(admin.id): "admin", uuid.UUID(member.id): "owner"}
    # The old owner's owner tokens end at once (the gateway's mark, and auth's own check)...
    assert await redis_client.get(f"owr:revoked:member:{team_id}:{owner.id}") is not None
    assert_problem(await client.get("/api/v1/auth/me", headers=owner.headers), 401)
    # ...and a refresh acts as an admin; the new owner's role applies from their next refresh.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": owner.refresh})
    assert claims(r.json()["access_token"])["role"] == "admin"
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh})
    assert claims(r.json()["access_token"])["role"] == "owner"
