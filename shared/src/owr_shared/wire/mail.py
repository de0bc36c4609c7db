"""auth <-> worker: the emails auth has the worker send (address verification, password reset, invitation,
security notices).

auth writes an `auth.outbound_mail` row in the transaction that calls for the email and, once it has
committed, queues the ARQ job `send_auth_mail(mail_id)`. The job's arguments are an id and trace ids, never
a token or an address: arq logs its jobs' arguments, and Redis is no place for them either. The worker asks
auth to render the mail (`POST /internal/mail/{id}/render`), which mints the one-time token at that moment
(storing only its hash) and answers `RenderedMail`; the worker sends it over SMTP and reports the outcome
(`POST /internal/mail/{id}/sent`, or `.../failed` with a `MailFailure`). docs/architecture.md, "Email from
auth", has the whole path.
"""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from pydantic import BaseModel, Field

from owr_shared.schemas import RequestSchema, StorableText

SEND_AUTH_MAIL_JOB = "send_auth_mail"
# Every kind auth may queue; a kind is rendered by the auth domain that owns it.
MailKind = Literal[
    "verify_email",
    "password_reset",
    "invitation",
    # Security notices (`owr_auth.notices`): what changed in an account's security, with no link to use.
    "mfa_enabled",
    "mfa_disabled",
    "recovery_codes_replaced",
    "password_changed",
    "new_sign_in",
]
MAIL_KINDS: tuple[str, ...] = get_args(MailKind)
# The longest failure reason auth stores (the worker's are short: a status class, never a server's text).
MAX_FAILURE_REASON = 200


def auth_mail_job_id(mail_id: uuid.UUID | str) -> str:
    """One queued job per mail: a second enqueue of the same mail while the first waits adds nothing."""
    return f"{SEND_AUTH_MAIL_JOB}:{mail_id}"


class RenderedMail(BaseModel):
    """The message to send: the body may carry a one-time link, so neither it nor the address is in a repr."""

    kind: MailKind
    to: str = Field(max_length=254, repr=False)
    subject: str = Field(max_length=200)
    text: str = Field(repr=False)
    html: str = Field(repr=False)


class MailFailure(RequestSchema):
    """Why the worker gave up on a mail (stored with it, shown to operators)."""

    reason: StorableText = Field(min_length=1, max_length=MAX_FAILURE_REASON)


class PendingMail(BaseModel):
    """Mails still unsent a while after they were queued (their job may have been lost): the worker's cron
    queues `send_auth_mail` for each again (one job per mail, so a job still waiting is not doubled)."""

    ids: list[uuid.UUID]
