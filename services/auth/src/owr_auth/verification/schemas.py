"""Verification bodies."""

from __future__ import annotations

from pydantic import Field

from owr_shared.schemas import RequestSchema, StorableText


class VerifyEmailRequest(RequestSchema):
    # Long enough for any token auth issues; anything else is an invalid link (400), not a 422.
    token: StorableText = Field(max_length=256, repr=False)
