"""Invitation errors; none carries a token."""

from __future__ import annotations

from owr_shared import auth as shared_auth
from owr_shared.errors import Conflict, Forbidden, NotFound


class InvitationNotFound(NotFound):
    """Unknown, used, revoked or expired: one answer for all, so a token's fate is not told."""

    slug, title = "invitation-not-found", "Invitation Not Found"
    default_detail = "This invitation does not exist, was used or revoked, or has expired."


class AlreadyMember(Conflict):
    slug, title = "already-member", "Already a Member"
    default_detail = "This person is already a member of the workspace."


class TooManyInvitations(Conflict):
    slug, title = "too-many-invitations", "Too Many Invitations"

    def __init__(self, cap: int) -> None:
        super().__init__(f"The workspace already has {cap} open invitations, the most allowed; revoke one first.")


class InvitationForAnotherEmail(Forbidden):
    slug, title = "invitation-for-another-email", "Invitation For Another Email"
    default_detail = "This invitation was sent to another email address: sign in with that address to accept it."


class EmailNotVerified(shared_auth.EmailNotVerified):
    """The one `email-not-verified` problem of every service, said of an invitation."""

    default_detail = "Verify your email address before accepting an invitation."
