"""Members (issue 16): every member sees the list; an admin changes roles and removes members but never
above their own role; the owner's role changes only by a transfer. A lowered role or a removal ends the
member's tokens for the workspace at once (access JWTs and API tokens); a raised role applies from the
next refresh. Every change is audited, and the audit is an admin's read."""

from __future__ import annotations

import jwt

from tests.auth.teams import Person, person, team
from tests.auth.test_api_tokens import GATEWAY, introspect, make_token
from tests.support.http import assert_problem


def role_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["role"])


async def test_every_member_lists_the_members_an_outsider_gets_404(client, db_session, shared_app):
    team_id, owner, (admin, viewer) = await team(client, db_session, shared_app, "admin", "viewer")
    r = await client.get(f"/api/v1/workspaces/{team_id}/members", headers=viewer.headers)
    assert r.status_code == 200, r.text
    assert [(m["email"], m["role"]) for m in r.json()["items"]] == [
        (owner.email, "owner"),
        (admin.email, "admin"),
        (viewer.email, "viewer"),
    ]
    outsider = await person(client)
    assert_problem(await client.get(f"/api/v1/workspaces/{team_id}/members", headers=outsider.headers), 404)


async def test_who_may_change_whom(client, db_session, shared_app):
    team_id, owner, (admin, other_admin, member) = await team(
        client, db_session, shared_app, "admin", "admin", "member"
    )

    def url(who: Person) -> str:
        return f"/api/v1/workspaces/{team_id}/members/{who.id}"

    # A member changes nobody; an admin never the owner, nor gives a role above their own.
    body = assert_problem(await client.patch(url(admin), headers=member.headers, json={"role": "viewer"}), 403)
    assert body["type"].endswith("/role-too-low")
    body = assert_problem(await client.patch(url(owner), headers=admin.headers, json={"role": "viewer"}), 403)
    assert body["type"].endswith("/member-outranks-you")
    assert_problem(await client.patch(url(member), headers=admin.headers, json={"role": "owner"}), 422)
    body = assert_problem(await client.patch(url(owner), headers=owner.headers, json={"role": "admin"}), 409)
    assert body["type"].endswith("/owner-role-fixed")
    r = await client.patch(url(other_admin), headers=admin.headers, json={"role": "member"})
    assert (r.status_code, r.json()["role"]) == (200, "member")
    assert_problem(
        await client.patch(
            f"/api/v1/workspaces/{team_id}/members/{owner.personal}", headers=admin.headers, json={"role": "viewer"}
        ),
        404,
    )


async def test_a_lowered_role_ends_the_members_tokens_there_at_once(client, db_session, shared_app, redis_client):
    team_id, owner, (admin,) = await team(client, db_session, shared_app, "admin")
    api_token = (await make_token(client, admin.access, scopes=["keys:read", "keys:write"]))["token"]
    assert (await introspect(client, api_token)).json()["access_token"]

    r = await client.patch(
        f"/api/v1/workspaces/{team_id}/members/{admin.id}", headers=owner.headers, json={"role": "viewer"}
    )
    assert r.status_code == 200, r.text

    assert await redis_client.get(f"owr:revoked:member:{team_id}:{admin.id}") is not None
    assert_problem(await client.get("/api/v1/auth/me", headers=admin.headers), 401)  # auth's own check
    # The API token lives on with the lower role; the next refresh carries the new role.
    answer = (await introspect(client, api_token, GATEWAY)).json()
    assert answer["active"] is True
    assert role_of(answer["access_token"]) == "viewer"
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": admin.refresh})
    assert role_of(r.json()["access_token"]) == "viewer"


async def test_a_raised_role_applies_from_the_next_refresh(client, db_session, shared_app, redis_client):
    team_id, owner, (viewer,) = await team(client, db_session, shared_app, "viewer")
    r = await client.patch(
        f"/api/v1/workspaces/{team_id}/members/{viewer.id}", headers=owner.headers, json={"role": "admin"}
    )
    assert r.status_code == 200, r.text
    assert await redis_client.get(f"owr:revoked:member:{team_id}:{viewer.id}") is None
    me = await client.get("/api/v1/auth/me", headers=viewer.headers)
    assert me.json()["workspace"]["role"] == "viewer"  # the token still says what it said
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": viewer.refresh})
    assert role_of(r.json()["access_token"]) == "admin"


async def test_an_api_token_carries_its_minters_role_at_minting(client, db_session, shared_app):
    team_id, owner, (member,) = await team(client, db_session, shared_app, "member")
    token = await make_token(client, member.access, scopes=["keys:read", "keys:write"])
    assert (token["role"], token["workspace_id"]) == ("member", team_id)
    await client.patch(
        f"/api/v1/workspaces/{team_id}/members/{member.id}", headers=owner.headers, json={"role": "admin"}
    )
    answer = (await introspect(client, token["token"])).json()
    assert role_of(answer["access_token"]) == "member"  # a raised role does not raise a token


async def test_a_viewer_makes_no_api_token_but_lists_and_revokes_their_own(client, db_session, shared_app):
    team_id, owner, (member,) = await team(client, db_session, shared_app, "member")
    token = await make_token(client, member.access)
    await client.patch(
        f"/api/v1/workspaces/{team_id}/members/{member.id}", headers=owner.headers, json={"role": "viewer"}
    )
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh})
    viewer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    body = assert_problem(await client.post("/api/v1/tokens", headers=viewer, json={"name": "x"}), 403)
    assert body["type"].endswith("/role-too-low")
    assert (await client.get("/api/v1/tokens", headers=viewer)).json()["total"] == 1
    assert (await client.delete(f"/api/v1/tokens/{token['id']}", headers=viewer)).status_code == 204


async def test_removal_ends_tokens_and_api_tokens_and_leaving_is_allowed(client, db_session, shared_app, redis_client):
    team_id, owner, (admin, member) = await team(client, db_session, shared_app, "admin", "member")
    api_token = (await make_token(client, member.access))["token"]
    url = f"/api/v1/workspaces/{team_id}/members"
    assert_problem(await client.delete(f"{url}/{admin.id}", headers=member.headers), 403)
    assert_problem(await client.delete(f"{url}/{owner.id}", headers=admin.headers), 403)

    assert (await client.delete(f"{url}/{member.id}", headers=admin.headers)).status_code == 204
    assert await redis_client.get(f"owr:revoked:member:{team_id}:{member.id}") is not None
    assert_problem(await client.get("/api/v1/auth/me", headers=member.headers), 401)
    assert (await introspect(client, api_token)).json()["active"] is False
    assert_problem(await client.get(url, headers=member.headers), 401)
    # Their session goes on, in their own workspace.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": member.refresh})
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["wid"] == member.personal

    assert (await client.delete(f"{url}/{admin.id}", headers=admin.headers)).status_code == 204  # leaving
    body = assert_problem(await client.delete(f"{url}/{owner.id}", headers=owner.headers), 409)
    assert body["type"].endswith("/owner-role-fixed")
    assert [m["role"] for m in (await client.get(url, headers=owner.headers)).json()["items"]] == ["owner"]


async def test_every_membership_change_is_audited_for_admins(client, db_session, shared_app):
    team_id, owner, (admin, member) = await team(client, db_session, shared_app, "admin", "member")
    await client.patch(
        f"/api/v1/workspaces/{team_id}/members/{member.id}", headers=admin.headers, json={"role": "viewer"}
    )
    await client.delete(f"/api/v1/workspaces/{team_id}/members/{member.id}", headers=admin.headers)
    await client.post(f"/api/v1/workspaces/{team_id}/transfer", headers=owner.headers, json={"user_id": admin.id})

    assert_problem(await client.get(f"/api/v1/workspaces/{team_id}/audit", headers=member.headers), 401)
    r = await client.get(f"/api/v1/workspaces/{team_id}/audit", headers=admin.headers, params={"per_page": 50})
    assert r.status_code == 200, r.text
    events = [(e["action"], e["actor_email"], e["subject_email"], e["details"]) for e in reversed(r.json()["items"])]
    assert events == [
        ("workspace.created", owner.email, None, {"name": "Team"}),
        ("member.invited", owner.email, admin.email, {"role": "admin"}),
        ("member.joined", admin.email, admin.email, {"role": "admin"}),
        ("member.invited", owner.email, member.email, {"role": "member"}),
        ("member.joined", member.email, member.email, {"role": "member"}),
        ("member.role_changed", admin.email, member.email, {"old_role": "member", "new_role": "viewer"}),
        ("member.removed", admin.email, member.email, {"role": "viewer"}),
        ("ownership.transferred", owner.email, admin.email, {"old_role": "admin"}),
    ]
