"""Email verification (issue 16): a link at registration and on request, one-time, hashed at rest, 48 hours;
and the outbound-mail path auth offers the worker (render, sent, failed, pending)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import jwt
from arq.jobs import deserialize_job
from sqlalchemy import select, text

from owr_auth.email_tokens.models import EmailToken
from owr_auth.mail.models import OutboundMail
from owr_auth.verification.service import is_verified
from tests.auth.conftest import (
    GATEWAY_SECRET,
    MAIL_QUEUE,
    MAILER,
    basic,
    emailed_token,
    link_token,
    login,
    queued_mails,
    register,
    registered_session,
    render_mail,
)
from tests.auth.teams import invitation_token, invite, person
from tests.auth.test_api_tokens import GATEWAY, make_token
from tests.support.db import savepoint
from tests.support.http import assert_problem, bearer


async def test_registration_queues_a_verification_mail_whose_job_carries_only_its_id(
    client, shared_app, db_session, redis_client
):
    user, pair = await registered_session(client)
    me = (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).json()
    assert me["email_verified"] is False
    (mail,) = await queued_mails(db_session, user["id"])
    assert (mail.kind, mail.status, mail.recipient, mail.renders) == ("verify_email", "pending", user["email"], 0)

    await shared_app.state.mail_queue.drain()
    (job_id,) = await redis_client.zrange(MAIL_QUEUE, 0, -1)
    assert job_id.decode() == f"send_auth_mail:{mail.id}"
    raw = await redis_client.get(b"arq:job:" + job_id)
    job = deserialize_job(raw)
    # arq logs a job's arguments: an id and the trace, never an address or a token.
    assert job.function == "send_auth_mail"
    assert job.args == ()
    assert set(job.kwargs) == {"mail_id", "traceparent", "request_id"}
    assert job.kwargs["mail_id"] == str(mail.id)
    assert user["email"].encode() not in raw


async def test_the_link_verifies_once(client, db_session):
    user, pair = await registered_session(client)
    (mail,) = await queued_mails(db_session, user["id"])
    r = await render_mail(client, mail.id)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    rendered = r.json()
    assert rendered["to"] == user["email"]
    assert rendered["kind"] == "verify_email"
    assert rendered["subject"] == "Verify your email address"
    token = link_token(rendered)
    assert token.startswith("owrv_")
    assert f"http://localhost:8000/verify-email?token={token}" in rendered["text"]
    assert "48 hours" in rendered["text"]

    assert (await client.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 204
    me = (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).json()
    assert me["email_verified"] is True
    assert await is_verified(db_session, uuid.UUID(user["id"]))
    again = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert_problem(again, 410)["type"].endswith("/link-expired")


async def test_a_token_is_stored_as_its_hash_only(client, db_session):
    user = await register(client)
    token = await emailed_token(client, db_session, user["id"], "verify_email")
    (row,) = (await db_session.execute(select(EmailToken).where(EmailToken.user_id == uuid.UUID(user["id"])))).scalars()
    assert row.token_hash == hashlib.sha256(token.encode()).digest()
    # No column of any auth table holds the token itself.
    dump = await db_session.execute(
        text(
            "SELECT row_to_json(t)::text FROM auth.email_tokens t UNION ALL SELECT row_to_json(m)::text FROM auth.outbound_mail m"
        )
    )
    assert not any(token in line or token[5:] in line for (line,) in dump)


async def test_unknown_and_malformed_links_are_400(client):
    for token in ("owrv_" + "A" * 43, "not a token", "owrp_" + "B" * 43, ""):
        r = await client.post("/api/v1/auth/verify-email", json={"token": token})
        assert_problem(r, 400)["type"].endswith("/invalid-link")


async def test_a_link_expires_after_48_hours(client, db_session, clock):
    user = await register(client)
    token = await emailed_token(client, db_session, user["id"], "verify_email")
    clock.advance(timedelta(hours=48).total_seconds() + 1)
    assert_problem(await client.post("/api/v1/auth/verify-email", json={"token": token}), 410)
    assert not await is_verified(db_session, uuid.UUID(user["id"]))


async def test_a_mail_rendered_again_replaces_its_link(client, db_session):
    """At least once: a job retried after a crash renders its mail again; the earlier link stops working."""
    user = await register(client)
    (mail,) = await queued_mails(db_session, user["id"])
    first = link_token((await render_mail(client, mail.id)).json())
    second = link_token((await render_mail(client, mail.id)).json())
    assert first != second
    assert_problem(await client.post("/api/v1/auth/verify-email", json={"token": first}), 400)
    assert (await client.post("/api/v1/auth/verify-email", json={"token": second})).status_code == 204
    (mail,) = await queued_mails(db_session, user["id"])
    assert mail.renders == 2


async def test_resend_sends_another_link_and_any_one_of_them_verifies(client, db_session):
    user, pair = await registered_session(client)
    first = await emailed_token(client, db_session, user["id"], "verify_email")
    r = await client.post("/api/v1/auth/verify-email/resend", headers=bearer(pair["access_token"]))
    assert r.status_code == 202, r.text
    assert len(await queued_mails(db_session, user["id"], "verify_email")) == 2
    second = await emailed_token(client, db_session, user["id"], "verify_email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": first})).status_code == 204
    # The other links die once one worked; the address stays verified.
    assert_problem(await client.post("/api/v1/auth/verify-email", json={"token": second}), 400)
    r = await client.post("/api/v1/auth/verify-email/resend", headers=bearer(pair["access_token"]))
    assert_problem(r, 409)["type"].endswith("/email-already-verified")


async def test_resend_is_limited_per_account(app_factory, db_session):
    async with app_factory(verification_resend_max=2) as client:
        _, pair = await registered_session(client)
        headers = bearer(pair["access_token"])
        for _ in range(2):
            assert (await client.post("/api/v1/auth/verify-email/resend", headers=headers)).status_code == 202
        refused = await client.post("/api/v1/auth/verify-email/resend", headers=headers)
        assert_problem(refused, 429)["type"].endswith("/too-many-emails")
        assert 3500 <= int(refused.headers["retry-after"]) <= 3600


async def test_resend_needs_a_signed_in_person(client):
    assert_problem(await client.post("/api/v1/auth/verify-email/resend"), 401)


async def test_a_mail_no_longer_wanted_is_cancelled_not_sent(client, db_session, db_connection):
    """Verified by another link before this mail went out: nothing to send (410), the mail is cancelled."""
    user = await register(client)
    token = await emailed_token(client, db_session, user["id"], "verify_email")
    (mail,) = await queued_mails(db_session, user["id"])
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 204
    async with savepoint(db_connection) as conn:
        await conn.execute(text("UPDATE auth.outbound_mail SET status = 'pending' WHERE id = :id"), {"id": mail.id})
    assert_problem(await render_mail(client, mail.id), 410)["type"].endswith("/mail-gone")
    (mail,) = await queued_mails(db_session, user["id"])
    assert mail.status == "cancelled"


async def test_sent_and_failed_end_a_mail_for_good(client, db_session):
    user = await register(client)
    (mail,) = await queued_mails(db_session, user["id"])
    await render_mail(client, mail.id)
    assert (await client.post(f"/internal/mail/{mail.id}/sent", headers=MAILER)).status_code == 204
    assert (await client.post(f"/internal/mail/{mail.id}/sent", headers=MAILER)).status_code == 204
    assert_problem(await render_mail(client, mail.id), 410)
    (mail,) = await queued_mails(db_session, user["id"])
    assert mail.status == "sent"
    assert mail.finished_at is not None

    other = await register(client)
    (failing,) = await queued_mails(db_session, other["id"])
    token = link_token((await render_mail(client, failing.id)).json())
    r = await client.post(
        f"/internal/mail/{failing.id}/failed", headers=MAILER, json={"reason": "the mail server answered 550"}
    )
    assert r.status_code == 204, r.text
    (failing,) = await queued_mails(db_session, other["id"])
    assert (failing.status, failing.failure) == ("failed", "the mail server answered 550")
    # The link of a mail that was never delivered is discarded.
    assert_problem(await client.post("/api/v1/auth/verify-email", json={"token": token}), 400)
    assert_problem(await client.post(f"/internal/mail/{uuid.uuid4()}/sent", headers=MAILER), 404)
    assert_problem(await render_mail(client, uuid.uuid4()), 410)


async def test_pending_lists_mails_whose_job_may_be_lost(client, db_session, db_connection):
    user = await register(client)
    (mail,) = await queued_mails(db_session, user["id"])
    listed = (await client.get("/internal/mail/pending", headers=MAILER)).json()["ids"]
    assert str(mail.id) not in listed  # just queued: its job is surely still on the way
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text("UPDATE auth.outbound_mail SET created_at = now() - interval '5 minutes' WHERE id = :id"),
            {"id": mail.id},
        )
    listed = (await client.get("/internal/mail/pending", headers=MAILER)).json()["ids"]
    assert str(mail.id) in listed
    await client.post(f"/internal/mail/{mail.id}/sent", headers=MAILER)
    assert str(mail.id) not in (await client.get("/internal/mail/pending", headers=MAILER)).json()["ids"]


async def test_the_mail_routes_demand_a_client_with_mail_render(client, db_session):
    user = await register(client)
    (mail,) = await queued_mails(db_session, user["id"])
    calls = (
        ("POST", f"/internal/mail/{mail.id}/render", None),
        ("POST", f"/internal/mail/{mail.id}/sent", None),
        ("POST", f"/internal/mail/{mail.id}/failed", {"reason": "x"}),
        ("GET", "/internal/mail/pending", None),
    )
    for method, path, body in calls:
        assert_problem(await client.request(method, path, json=body), 401)
        assert_problem(await client.request(method, path, json=body, headers=basic("mailer", "wrong" * 8)), 401)
        assert_problem(await client.request(method, path, json=body, headers=basic("gateway", GATEWAY_SECRET)), 403)
    (mail,) = await queued_mails(db_session, user["id"])
    assert (mail.status, mail.renders) == ("pending", 0)


async def test_no_token_reaches_the_logs(client, db_session, json_logs):
    user = await register(client)
    token = await emailed_token(client, db_session, user["id"], "verify_email")
    await client.post("/api/v1/auth/verify-email", json={"token": token})
    await client.post("/api/v1/auth/verify-email", json={"token": token})
    logs = json_logs.getvalue()
    assert "mail_rendered" in logs
    assert "email_verified" in logs
    assert token not in logs
    assert token[5:] not in logs


async def test_an_invitation_needs_a_verified_address_and_the_link_gives_one(client, db_session, shared_app):
    """Unverified accounts sign in and work, but cannot accept an invitation until their link is used."""
    owner = await person(client)
    bob = await person(client)
    invitation = await invite(client, owner, owner.personal, bob.email, "viewer")
    token = await invitation_token(db_session, shared_app, invitation["id"])
    accept = {"token": token}
    refused = await client.post("/api/v1/invitations/accept", headers=bob.headers, json=accept)
    assert assert_problem(refused, 403)["type"].endswith("/email-not-verified")
    assert not await is_verified(db_session, uuid.UUID(bob.id))
    link = await emailed_token(client, db_session, bob.id, "verify_email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": link})).status_code == 204
    assert (await client.post("/api/v1/invitations/accept", headers=bob.headers, json=accept)).status_code == 200


async def test_an_invitation_goes_through_the_mail_path(client, db_session):
    owner = await person(client)
    invited = f"guest.{uuid.uuid4().hex[:8]}@example.com"
    created = await invite(client, owner, owner.personal, invited, "member")
    (mail,) = (
        await db_session.execute(
            select(OutboundMail)
            .where(OutboundMail.subject_id == uuid.UUID(created["id"]))
            .execution_options(populate_existing=True)
        )
    ).scalars()
    assert (mail.kind, mail.recipient, mail.user_id) == ("invitation", invited, None)
    rendered = (await render_mail(client, mail.id)).json()
    assert rendered["kind"] == "invitation"
    assert rendered["to"] == invited
    assert "/invite?token=owri_" in rendered["text"]
    # Revoked: its mail is no longer wanted.
    await client.delete(f"/api/v1/workspaces/{owner.personal}/invitations/{created['id']}", headers=owner.headers)
    assert_problem(await render_mail(client, mail.id), 410)


def _verified_claim(access_token: str) -> object:
    return jwt.decode(access_token, options={"verify_signature": False})["email_verified"]


async def test_every_access_token_says_whether_the_address_is_verified(client, db_session):
    """The `email_verified` claim lets each service refuse what an unverified account may not do (usage's
    channels): false in the tokens minted before the verification, true from the session's next pair (a
    refresh or a switch) and in an API token's introspected JWT."""
    user, pair = await registered_session(client)
    assert _verified_claim(pair["access_token"]) is False
    token = await make_token(client, pair["access_token"], scopes=["alerts:write"])
    answer = (await client.post("/internal/tokens/introspect", headers=GATEWAY, json={"token": token["token"]})).json()
    assert _verified_claim(answer["access_token"]) is False

    verify = await emailed_token(client, db_session, user["id"], "verify_email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": verify})).status_code == 204
    refreshed = (await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
    assert _verified_claim(refreshed["access_token"]) is True
    switched = await client.post(
        "/api/v1/auth/switch",
        headers=bearer(refreshed["access_token"]),
        json={"workspace_id": user["workspace"]["id"]},
    )
    assert _verified_claim(switched.json()["access_token"]) is True
    assert _verified_claim((await login(client, user["email"]))["access_token"]) is True
    answer = (await client.post("/internal/tokens/introspect", headers=GATEWAY, json={"token": token["token"]})).json()
    assert _verified_claim(answer["access_token"]) is True
