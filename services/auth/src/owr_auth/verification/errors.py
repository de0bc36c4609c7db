"""Verification errors."""

from __future__ import annotations

from owr_shared.errors import Conflict


class AlreadyVerified(Conflict):
    slug, title = "email-already-verified", "Email Already Verified"
    default_detail = "This account's email address is verified already."
