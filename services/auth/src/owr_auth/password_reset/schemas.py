"""Password-reset bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from owr_shared.schemas import RequestSchema, StorableText


class PasswordResetRequest(RequestSchema):
    email: StorableText = Field(max_length=254)


class PasswordResetConfirm(RequestSchema):
    token: StorableText = Field(max_length=256, repr=False)
    # The policy allows 128 characters; longer values pass the schema so the 422 can say why.
    new_password: StorableText = Field(max_length=1024, repr=False)


class PasswordResetAccepted(BaseModel):
    """The one answer to every reset request, whether or not the address has an account."""

    detail: str = "If an account uses this email address, a link to choose a new password is on its way."
