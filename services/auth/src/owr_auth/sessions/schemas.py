"""Login, refresh and logout bodies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from owr_auth.mfa.schemas import OneOfCodes
from owr_shared.schemas import RequestSchema, StorableText


class LoginRequest(RequestSchema):
    email: StorableText = Field(max_length=254)
    # Not policy-checked at login; long enough for any password the policy ever accepted.
    password: StorableText = Field(max_length=1024, repr=False)


class RefreshRequest(RequestSchema):
    refresh_token: StorableText = Field(max_length=256, repr=False)


class LogoutRequest(RequestSchema):
    refresh_token: StorableText = Field(max_length=256, repr=False)


class MfaLoginRequest(OneOfCodes):
    """The second step: the first step's challenge, and a current code or an unused recovery code."""

    challenge: StorableText = Field(max_length=256, repr=False)


class MfaChallenge(BaseModel):
    """The first step's answer when two-factor sign-in is on: no tokens yet."""

    mfa_required: Literal[True] = True
    challenge: str = Field(repr=False, description="for POST /api/v1/auth/login/mfa; single-use")
    expires_in: int = Field(description="seconds left for the second step")


class RevokeAllRequest(RequestSchema):
    keep_current: bool = Field(default=False, description="leave the session of the calling token alive")


class SessionView(BaseModel):
    """A sign-in session (a device or browser) as the person sees it."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    user_agent: str | None
    ip: str | None = Field(description="the client address as auth saw it at the last sign-in or refresh")
    current: bool = Field(description="the session of the token making this request")


class TokenPair(BaseModel):
    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The client of a request as auth sees it: its address (after trusted proxies) and user agent, bounded."""

    ip: str
    user_agent: str | None
