"""Pydantic building blocks every service's schemas share: strict bodies, storable text, money, pages, problems."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.responses import Response

from owr_shared.errors import PROBLEM_CONTENT_TYPE
from owr_shared.wire import codec

ItemT = TypeVar("ItemT")

MAX_PER_PAGE = 250
# Bounds OFFSET arithmetic well inside BIGINT, so an absurd page number is a 422, not a 500.
MAX_PAGE = 1_000_000
MONEY_BOUND = Decimal("1e12")

# USD with every digit kept: validated as a finite decimal, documented and rendered as a JSON number.
Money = Annotated[
    Decimal,
    Field(allow_inf_nan=False, ge=-MONEY_BOUND, le=MONEY_BOUND),
    WithJsonSchema({"type": "number", "minimum": -1e12, "maximum": 1e12}),
]


def _storable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL and hashing needs UTF-8: refuse both as a 422, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


StorableText = Annotated[str, AfterValidator(_storable_text)]


class RequestSchema(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[ItemT]):
    """One page of a list."""

    items: list[ItemT]
    total: int
    page: int
    per_page: int


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json bodies for `statuses`."""
    schema = ProblemDetail.model_json_schema()
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


# An answer that carries a secret shown once (a token, a signing secret, recovery codes): no cache keeps it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Render `model` as JSON with money as exact numbers (FastAPI's own path would make them strings)."""
    body = codec.dumps(model.model_dump(mode="python"), option=orjson.OPT_UTC_Z)
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
