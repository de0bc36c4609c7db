"""The invitation email: rendered (and its one-time token minted) when the mail is about to be sent.

The token never waits anywhere in the clear: not in the database (only its SHA-256), not in a job's
arguments. `render` mints it as the sending worker asks for the mail, stores its hash (replacing any
earlier one: only the latest mail's link works) and returns the message with the link
`{public_base_url}/invite?token=...`. `request` is what an invitation calls to have its mail sent: an
`auth.outbound_mail` row of kind `invitation` naming it (docs/architecture.md, "Email from auth"), which the
worker renders through `render_mail` (registered in `owr_auth.mail.renderers`).
"""

from __future__ import annotations

import hashlib
import html
import secrets
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.invitations.models import Invitation
from owr_auth.invitations.repository import InvitationRepository
from owr_auth.mail.models import OutboundMail
from owr_auth.mail.outbox import queue_mail
from owr_auth.mail.queue import MailQueue
from owr_auth.settings import AuthSettings
from owr_auth.users.repository import UserRepository
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_shared.logging import get_logger
from owr_shared.wire.mail import RenderedMail

log = get_logger(__name__)

INVITATION_TOKEN_PREFIX = "owri_"  # noqa: S105 - a public prefix, not a secret
# prefix + token_urlsafe(32): 43 base64url characters (256 random bits).
_TOKEN_LENGTH = len(INVITATION_TOKEN_PREFIX) + 43


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def well_formed(token: str) -> bool:
    return token.startswith(INVITATION_TOKEN_PREFIX) and len(token) == _TOKEN_LENGTH


async def request(session: AsyncSession, queue: MailQueue, invitation: Invitation) -> None:
    """Have the invitation's email sent, once this transaction commits (the worker asks `render_mail`)."""
    await queue_mail(session, queue, kind="invitation", recipient=invitation.email, subject_id=invitation.id)
    log.info("invitation_mail_requested", invitation_id=str(invitation.id), workspace_id=str(invitation.workspace_id))


async def render_mail(
    session: AsyncSession, settings: AuthSettings, mail: OutboundMail, now: datetime
) -> RenderedMail | None:
    """The renderer of `invitation` mails (`owr_auth.mail.renderers`): the mail names its invitation."""
    if mail.subject_id is None:
        return None
    rendered = await render(session, settings, mail.subject_id)
    return rendered if rendered is not None and rendered.to == mail.recipient else None


async def render(session: AsyncSession, settings: AuthSettings, invitation_id: uuid.UUID) -> RenderedMail | None:
    """Mint the invitation's token and render its email; None when the invitation is no longer open
    (accepted, revoked or expired: the mail is dropped)."""
    invitation = await InvitationRepository(session).lock(invitation_id)
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= datetime.now(UTC)
    ):
        return None
    workspace = await WorkspaceRepository(session).get(invitation.workspace_id)
    if workspace is None or workspace.deleted_at is not None:
        return None
    inviter = await UserRepository(session).get(invitation.invited_by) if invitation.invited_by else None
    token = INVITATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    await session.flush()
    link = f"{settings.public_base_url}/invite?token={quote(token)}"
    who = inviter.email if inviter is not None else "A member"
    expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    subject = f"You are invited to {workspace.name} on OpenRouter Watcher"
    text = (
        f'{who} invited you to the workspace "{workspace.name}" on OpenRouter Watcher, as {invitation.role}.\n\n'
        f"Accept the invitation (sign in or create an account with this address, {invitation.email}):\n"
        f"{link}\n\n"
        f"The link works once, until {expires}. If you did not expect this email, ignore it.\n"
    )
    body = (
        f"<p>{html.escape(who)} invited you to the workspace <strong>{html.escape(workspace.name)}</strong>"
        f" on OpenRouter Watcher, as {html.escape(invitation.role)}.</p>"
        f'<p><a href="{html.escape(link)}">Accept the invitation</a> (sign in or create an account with this'
        f" address, {html.escape(invitation.email)}).</p>"
        f"<p>The link works once, until {html.escape(expires)}. If you did not expect this email, ignore it.</p>"
    )
    log.info("invitation_mail_rendered", invitation_id=str(invitation.id))
    return RenderedMail(kind="invitation", to=invitation.email, subject=subject, text=text, html=body)
