"""Registration: normalised unique emails, the password policy, the personal workspace."""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import select

from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership, Workspace
from tests.auth.conftest import PASSWORD, register, unique_email
from tests.support.http import assert_problem


async def test_register_creates_user_with_personal_workspace(client, db_session):
    email = unique_email()
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "email", "email_verified", "created_at", "workspace"}
    assert body["email"] == email
    assert body["email_verified"] is False
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert body["workspace"]["role"] == "owner"
    assert body["workspace"]["name"] == "Personal"
    assert PASSWORD not in r.text

    user = await db_session.get(User, uuid.UUID(body["id"]))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    memberships = (await db_session.execute(select(Membership).where(Membership.user_id == user.id))).scalars().all()
    assert [(str(m.workspace_id), m.role) for m in memberships] == [(body["workspace"]["id"], "owner")]
    assert await db_session.get(Workspace, memberships[0].workspace_id) is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Foo.Bar@EXAMPLE.com ", "foo.bar@example.com"),
        ("\uff46\uff4f\uff4f@example.com", "foo@example.com"),  # fullwidth letters, NFKC
        ("MiXeD@Sub.Example.ORG", "mixed@sub.example.org"),
    ],
)
async def test_email_is_normalised(client, raw, expected):
    tag = secrets.token_hex(4)
    local, domain = raw.split("@")
    body = await register(client, f"{local}{tag}@{domain}")
    exp_local, exp_domain = expected.split("@")
    assert body["email"] == f"{exp_local}{tag}@{exp_domain}"


async def test_duplicate_email_is_409_whatever_its_case(client):
    email = unique_email()
    await register(client, email)
    r = await client.post("/api/v1/auth/register", json={"email": f"  {email.upper()}", "password": PASSWORD})
    body = assert_problem(r, 409)
    assert body["type"].endswith("/email-taken")
    assert PASSWORD not in r.text


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("elevenchars", "password_too_short"),
        ("x" * 129, "password_too_long"),
        ("y" * 1024, "password_too_long"),
        ("qwerty123456", "password_too_common"),
        ("QWERTY123456", "password_too_common"),
        ("1qaz2wsx3edc", "password_too_common"),
    ],
)
async def test_password_policy_is_a_422_naming_the_rule(client, password, rule):
    r = await client.post("/api/v1/auth/register", json={"email": unique_email(), "password": password})
    body = assert_problem(r, 422)
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", "password"], rule)]
    assert password not in r.text
    assert password.lower() not in r.text.lower()


@pytest.mark.parametrize("length", [12, 128])
async def test_password_length_bounds_are_inclusive(client, length):
    password = (secrets.token_hex(64) * 2)[:length]
    await register(client, password=password)


async def test_no_composition_rules(client):
    await register(client, password="only lowercase letters here")
    await register(client, password="\U0001f600\U0001f601 emoji and spaces \u00e9")


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "user@localhost", "two@@example.com", "x" * 250 + "@e.com"])
async def test_invalid_email_is_422(client, email):
    body = assert_problem(await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 422)
    assert body["errors"][0]["loc"] == ["body", "email"]
