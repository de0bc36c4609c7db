"""Membership errors."""

from __future__ import annotations

from owr_shared.errors import Conflict, Forbidden, NotFound


class MemberNotFound(NotFound):
    slug, title = "member-not-found", "Member Not Found"
    default_detail = "No member of this workspace has this user id."


class OwnerRoleFixed(Conflict):
    """The owner's role changes only by a transfer, and the owner cannot leave their own workspace."""

    slug, title = "owner-role-fixed", "Owner Role Fixed"
    default_detail = "The owner's role changes only by transferring the ownership; transfer it first."


class MemberOutranksYou(Forbidden):
    """An admin may manage members and admins, never the owner, and give no role above their own."""

    slug, title = "member-outranks-you", "Member Outranks You"
    default_detail = "You cannot change a member whose role is above yours, or give a role above yours."


class AlreadyOwner(Conflict):
    slug, title = "already-owner", "Already the Owner"
    default_detail = "This member already owns the workspace."
