"""Login, refresh and logout bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from owr_shared.schemas import RequestSchema, StorableText


class LoginRequest(RequestSchema):
    email: StorableText = Field(max_length=254)
    # Not policy-checked at login; long enough for any password the policy ever accepted.
    password: StorableText = Field(max_length=1024, repr=False)


class RefreshRequest(RequestSchema):
    refresh_token: StorableText = Field(max_length=256, repr=False)


class LogoutRequest(RequestSchema):
    refresh_token: StorableText = Field(max_length=256, repr=False)


class TokenPair(BaseModel):
    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int
