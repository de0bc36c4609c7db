"""Two-factor bodies and views. The secret appears in one answer (setup's URI and QR code) and the recovery
codes in one (enable's); no other answer, log line or error carries either."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

from owr_shared.schemas import RequestSchema, StorableText

# Six digits, spaces allowed ("123 456", as some apps show it).
TotpCode = Annotated[str, Field(min_length=6, max_length=16, pattern=r"^[0-9 ]+$")]
# `xxxx-xxxx-xxxx`, separators and case optional.
RecoveryCodeText = Annotated[StorableText, Field(min_length=12, max_length=32)]


class SetupView(BaseModel):
    """Scan the QR code (or open the URI) in an authenticator app, then confirm with `enable`."""

    otpauth_uri: str = Field(repr=False, description="otpauth://totp/... with the secret; shown this once")
    qr_svg: str = Field(repr=False, description="the URI as a QR code, a standalone SVG document")


class SetupRequest(RequestSchema):
    """The account's password, typed again: a stolen session alone cannot put its own authenticator on it."""

    password: StorableText = Field(max_length=1024, repr=False)


class EnableRequest(RequestSchema):
    code: TotpCode = Field(repr=False)


class RecoveryCodesRequest(RequestSchema):
    """A fresh code from the authenticator app (a recovery code cannot make new ones)."""

    code: TotpCode = Field(repr=False)


class RecoveryCodesView(BaseModel):
    recovery_codes: list[str] = Field(repr=False, description="ten one-time codes; shown this once, store them now")


class OneOfCodes(RequestSchema):
    """Exactly one of a current authenticator code and an unused recovery code."""

    code: TotpCode | None = Field(default=None, repr=False)
    recovery_code: RecoveryCodeText | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("give exactly one of code and recovery_code")
        return self


class DisableRequest(OneOfCodes):
    """A fresh code (one not used before), or a recovery code when the authenticator is lost."""


class MfaStatus(BaseModel):
    enabled: bool
    pending: bool = Field(description="a setup was started and not yet confirmed with a code")
    enabled_at: datetime | None
    recovery_codes_left: int
