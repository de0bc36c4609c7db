"""`send_auth_mail` against the real auth app (served over HTTP, on the session's database) and a real SMTP
server: the job auth queues renders, sends and reports; the emailed links work; retries and give-ups."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import Message
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import text

from owr_worker.auth_mail import requeue_auth_mail, send_auth_mail
from owr_worker.settings import WorkerSettings
from owr_worker.worker import build_clients, close_clients
from tests.auth.conftest import PASSWORD
from tests.support.logs import captured_json_logs
from tests.support.mail import Inbox, smtp_server
from tests.support.served_auth import ServedAuth, mail_client, served_auth
from tests.worker.conftest import QUEUE

# auth wants 32 characters at least; the worker's other tests use a shorter one against their fakes.
CLIENT_SECRET = "worker-mail-secret-" + "z8" * 16
LINK = re.compile(r"(http://localhost:8000/[a-z-]+)\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
async def auth(database_url: str, redis_url: str, redis_client: Any) -> AsyncIterator[ServedAuth]:
    """auth itself, over HTTP, queueing its jobs on this suite's queue; the worker is a client of its own."""
    clients = {"worker": mail_client(CLIENT_SECRET)}
    async with served_auth(database_url, redis_url, clients=clients, queue_name=QUEUE) as served:
        yield served


@pytest.fixture
def sink() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def mail_ctx(
    settings_factory: Callable[..., WorkerSettings], arq_redis: ArqRedis, auth: ServedAuth, sink: tuple[Inbox, int]
) -> AsyncIterator[dict[str, Any]]:
    settings = settings_factory(
        auth_url=auth.url,
        service_client_secret=CLIENT_SECRET,
        smtp_url=f"smtp://127.0.0.1:{sink[1]}",
        job_retry_base_seconds=1,
        job_retry_cap_seconds=2,
    )
    ctx: dict[str, Any] = {"settings": settings, "redis": arq_redis, "job_try": 1}
    build_clients(ctx)
    yield ctx
    await close_clients(ctx)


async def queued_jobs(arq_redis: ArqRedis) -> list[dict[str, Any]]:
    """The kwargs of every `send_auth_mail` job waiting on the queue, once auth has queued them."""
    for _ in range(100):
        jobs = [j for j in await arq_redis.queued_jobs(queue_name=QUEUE) if j.function == "send_auth_mail"]
        if jobs:
            return [j.kwargs for j in jobs]
        await asyncio.sleep(0.02)
    return []


def body_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return bytes(part.get_payload(decode=True)).decode()
    raise AssertionError("no text part")


async def run_queued(ctx: dict[str, Any], arq_redis: ArqRedis) -> list[str]:
    """Run every queued `send_auth_mail` as the worker would, and take it off the queue."""
    outcomes = []
    for kwargs in await queued_jobs(arq_redis):
        outcomes.append(await send_auth_mail(ctx, **kwargs))
    await arq_redis.delete(QUEUE)
    return outcomes


async def register(auth: ServedAuth) -> str:
    email = f"mail.{secrets.token_hex(5)}@example.com"
    r = await auth.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


async def test_registration_and_reset_emails_arrive_and_their_links_work(mail_ctx, arq_redis, auth, sink):
    inbox, _ = sink
    email = await register(auth)
    (kwargs,) = await queued_jobs(arq_redis)
    assert set(kwargs) == {"mail_id", "traceparent", "request_id"}
    assert await run_queued(mail_ctx, arq_redis) == ["sent"]
    (verification,) = inbox.messages
    assert verification["To"] == email
    assert verification["From"] == mail_ctx["settings"].mail_from
    assert verification["Subject"] == "Verify your email address"
    page, token = LINK.search(body_text(verification)).groups()  # type: ignore[union-attr]
    assert page == "http://localhost:8000/verify-email"
    assert (await auth.http.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 204

    # The job again (a retry whose report was lost, the cron's) finds the mail sent: it goes out once.
    assert await send_auth_mail(mail_ctx, **kwargs) == "sent"
    await arq_redis.delete(f"owr:worker:auth_mail:sent:{kwargs['mail_id']}")
    assert await send_auth_mail(mail_ctx, **kwargs) == "dropped"  # auth knows it was sent
    assert len(inbox.messages) == 1

    assert (await auth.http.post("/api/v1/auth/password-reset", json={"email": email})).status_code == 202
    assert await run_queued(mail_ctx, arq_redis) == ["sent"]
    reset = inbox.messages[-1]
    assert reset["Subject"] == "Reset your password"
    page, token = LINK.search(body_text(reset)).groups()  # type: ignore[union-attr]
    assert page == "http://localhost:8000/reset-password"
    new_password = "reset by the worker's email 12"
    confirm = {"token": token, "new_password": new_password}
    assert (await auth.http.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 204
    assert (await auth.http.post("/api/v1/auth/password-reset/confirm", json=confirm)).status_code == 410
    login = await auth.http.post("/api/v1/auth/login", json={"email": email, "password": new_password})
    assert login.status_code == 200


async def test_a_security_notice_arrives_as_text_and_html_with_no_link_to_use(mail_ctx, arq_redis, auth, sink):
    inbox, _ = sink
    email = await register(auth)
    assert await run_queued(mail_ctx, arq_redis) == ["sent"]  # the verification email
    pair = (await auth.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    new_password = "changed with a notice to follow 3"
    r = await auth.http.put(
        "/api/v1/auth/me/password",
        headers={"authorization": f"Bearer {pair['access_token']}"},
        json={"current_password": PASSWORD, "new_password": new_password},
    )
    assert r.status_code == 204, r.text
    assert await run_queued(mail_ctx, arq_redis) == ["sent"]
    notice = inbox.messages[-1]
    assert (notice["To"], notice["Subject"]) == (email, "Your password was changed")
    parts = {
        part.get_content_type(): bytes(part.get_payload(decode=True)).decode()
        for part in notice.walk()
        if not part.is_multipart()
    }
    assert {"text/plain", "text/html"} <= set(parts)
    for body in (parts["text/plain"], parts["text/html"]):
        assert "http://localhost:8000/forgot-password" in body
        assert " UTC" in body
        assert "token=" not in body
        for secret in (PASSWORD, new_password, pair["access_token"], pair["refresh_token"]):
            assert secret not in body


async def test_a_temporary_refusal_is_retried_with_a_new_link(mail_ctx, arq_redis, auth, sink):
    inbox, _ = sink
    await register(auth)
    (kwargs,) = await queued_jobs(arq_redis)
    inbox.refuse = 451
    with pytest.raises(Retry):
        await send_auth_mail(mail_ctx, **kwargs)
    inbox.refuse = None
    mail_ctx["job_try"] = 2
    assert await send_auth_mail(mail_ctx, **kwargs) == "sent"
    (message,) = inbox.messages
    _, token = LINK.search(body_text(message)).groups()  # type: ignore[union-attr]
    assert (await auth.http.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 204


async def test_a_permanent_refusal_gives_up_and_tells_auth(mail_ctx, arq_redis, auth, sink):
    inbox, _ = sink
    await register(auth)
    (kwargs,) = await queued_jobs(arq_redis)
    inbox.refuse = 550
    assert await send_auth_mail(mail_ctx, **kwargs) == "failed"
    # auth took the report: the mail is not to be sent any more.
    inbox.refuse = None
    assert await send_auth_mail(mail_ctx, **kwargs) == "dropped"
    assert inbox.messages == []


async def test_temporary_refusals_give_up_after_the_last_try(mail_ctx, arq_redis, auth, sink):
    inbox, _ = sink
    await register(auth)
    (kwargs,) = await queued_jobs(arq_redis)
    inbox.refuse = 421
    mail_ctx["job_try"] = mail_ctx["settings"].job_max_tries
    assert await send_auth_mail(mail_ctx, **kwargs) == "failed"


async def test_a_lost_job_is_queued_again_by_the_cron(mail_ctx, arq_redis, auth, db_engine):
    await register(auth)
    (kwargs,) = await queued_jobs(arq_redis)
    await arq_redis.delete(QUEUE, f"arq:job:send_auth_mail:{kwargs['mail_id']}")  # lost with Redis
    # auth lists a mail as pending two minutes after it was queued: age it (a committed row of a fresh account).
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE auth.outbound_mail SET created_at = now() - interval '3 minutes' WHERE id = :id"),
            {"id": kwargs["mail_id"]},
        )
    assert await requeue_auth_mail(mail_ctx) >= 1
    assert await requeue_auth_mail(mail_ctx) == 0  # its job waits: not doubled
    assert kwargs["mail_id"] in {k["mail_id"] for k in await queued_jobs(arq_redis)}


async def test_without_smtp_the_mail_is_given_up(settings_factory, arq_redis, auth, sink):
    inbox, _ = sink
    await register(auth)
    (kwargs,) = await queued_jobs(arq_redis)
    settings = settings_factory(auth_url=auth.url, service_client_secret=CLIENT_SECRET)
    ctx: dict[str, Any] = {"settings": settings, "redis": arq_redis, "job_try": 1}
    build_clients(ctx)
    try:
        assert await send_auth_mail(ctx, **kwargs) == "failed"
    finally:
        await close_clients(ctx)
    assert inbox.messages == []


async def test_no_token_or_address_in_the_workers_logs(mail_ctx, arq_redis, auth, sink, capsys):
    inbox, _ = sink
    email = await register(auth)
    # The test's SMTP server (aiosmtpd, logger `mail.log`) runs in this process and logs every line it
    # receives: it is not the worker's, and stays quiet here.
    server_log = logging.getLogger("mail.log")
    with captured_json_logs(capsys, "worker") as logs:
        server_log.disabled = True
        try:
            assert await run_queued(mail_ctx, arq_redis) == ["sent"]
        finally:
            server_log.disabled = False
        text = logs.getvalue()
    _, token = LINK.search(body_text(inbox.messages[0])).groups()  # type: ignore[union-attr]
    assert "auth_mail_sent" in text
    assert token not in text
    assert token[5:] not in text
    assert email not in text


def test_a_blank_smtp_url_means_no_mail_server(settings_factory):
    """Compose passes `SMTP_URL: ${SMTP_URL:-}`: empty is unset, not an unreadable URL."""
    assert settings_factory(smtp_url="").smtp_url is None
    assert settings_factory(smtp_url="  ").smtp_url is None
