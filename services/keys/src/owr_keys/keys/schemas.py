"""Key bodies and views. A view never carries the secret; a refusal never echoes it."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictBool, StringConstraints

from owr_shared.schemas import Money, RequestSchema
from owr_shared.wire.keys import KeyKind, KeyStatus

KEY_PATTERN = re.compile(r"^sk-or-[A-Za-z0-9_-]{20,200}$")
# Anything that could be a key inside free text (names, errors): refused or scrubbed.
KEY_LIKE = re.compile(r"sk-or-[A-Za-z0-9_-]{8,}")
NAME_MAX = 100


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _check_secret(value: str) -> str:
    # The message describes the shape only; the value itself never reaches an error.
    if not KEY_PATTERN.match(value):
        raise ValueError("must be an OpenRouter API key: 'sk-or-' followed by 20-200 letters, digits, '-' or '_'")
    return value


def _check_name(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    if KEY_LIKE.search(value):
        raise ValueError("must not contain an API key")
    return value


# A key as pasted: surrounding whitespace (a trailing newline) is forgiven, anything else is a 422.
OpenRouterSecret = Annotated[
    str,
    BeforeValidator(_strip),
    Field(max_length=256, json_schema_extra={"pattern": KEY_PATTERN.pattern, "writeOnly": True}),
    AfterValidator(_check_secret),
]
KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(_check_name),
]


class CreateKeyRequest(RequestSchema):
    name: KeyName
    key: OpenRouterSecret = Field(repr=False)


class UpdateKeyRequest(RequestSchema):
    """Only the fields present (and not null) change."""

    name: KeyName | None = None
    is_active: StrictBool | None = None


class KeyView(BaseModel):
    """A stored key as its workspace sees it: masked, never the secret."""

    id: uuid.UUID
    name: str
    kind: KeyKind | None = Field(description="null until the first sync")
    label: str = Field(description="masked like OpenRouter's own: 'sk-or-v1-' + 3 characters + '...' + last 3")
    status: KeyStatus
    is_active: bool
    limit: Money | None = Field(description="USD; null means unlimited or not yet known")
    limit_reset: str | None
    limit_remaining: Money | None
    expires_at: datetime | None
    last_synced_at: datetime | None
    last_error: str | None
    created_at: datetime


class SyncAccepted(BaseModel):
    """A sync of the key is queued; `enqueued` is false when one was queued already."""

    key_id: uuid.UUID
    job_id: str
    enqueued: bool
