"""`/daily`'s keyset cursors: where the next page starts, bound to the query that made it.

A cursor is opaque to clients: base64url of the last row's sort key, the rows before the page it opens, and a
digest of both with the query (workspace, range, filters, sort, `per_page`). A cursor is used with the very
query that returned it; anything else (edited, truncated, another query's, another workspace's) is a 422
`invalid-cursor`. The digest has no secret, so it tells a mistake from a cursor rather than proving where it
came from; it needs none, because a cursor is only ever a position among the caller's own rows (every read
is filtered by the token's workspace, whatever the cursor says).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from owr_shared.dependencies import Pagination
from owr_usage.reports.errors import InvalidCursor
from owr_usage.reports.repository import NO_COUNT, RowFilter, Sort

VERSION = 1
MAX_CURSOR_LENGTH = 1024
_TIE_FIELDS = ("date", "key_id", "model", "provider")


# Bounds of what the database can compare, so even a crafted cursor (the digest has no secret) is a 422:
# text PostgreSQL can hold, a bigint, an amount well inside NUMERIC's range.
def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 300 or "\x00" in value:
        raise ValueError("not a stored text")
    value.encode()  # a lone surrogate is a UnicodeEncodeError (a ValueError)
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not NO_COUNT <= value < 2**63:
        raise ValueError("not a count")
    return value


def _money(value: Any) -> Decimal:
    if not isinstance(value, str) or len(value) > 80:
        raise ValueError("not an amount")
    amount = Decimal(value)
    if not amount.is_finite() or not -80 <= amount.adjusted() <= 40:
        raise ValueError("not an amount")
    return amount


# Per sort field: how its cursor value is read back (JSON -> the column's type).
_PARSE: dict[str, Callable[[Any], Any]] = {
    "date": lambda v: dt.date.fromisoformat(_text(v)),
    "key_id": lambda v: uuid.UUID(_text(v)),
    "model": _text,
    "provider": _text,
    "cost": _money,
    "requests": _count,
    "tokens": _count,
}


def key_fields(sort: Sort) -> list[str]:
    """The fields of `Sort.key`, by name."""
    return [sort.field, *(f for f in _TIE_FIELDS if f != sort.field)]


def _row_value(row: Any, field: str) -> Any:
    """A returned row's value of a sort field, as the database orders it (see `SORTABLE`)."""
    if field == "model":
        return row.model or ""
    if field == "provider":
        return "" if row.model is None else row.provider
    if field == "requests":
        return NO_COUNT if row.requests is None else row.requests
    if field == "tokens":
        if row.prompt_tokens is None or row.completion_tokens is None:
            return NO_COUNT
        return row.prompt_tokens + row.completion_tokens
    return getattr(row, field)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | uuid.UUID | Decimal):
        return str(value)
    return value


def _digest(f: RowFilter, sort: Sort, per_page: int, position: list[Any], rows_before: int) -> str:
    query = [
        VERSION,
        str(f.workspace_id),
        f.first.isoformat(),
        f.last.isoformat(),
        None if f.key_id is None else str(f.key_id),
        f.model,
        f.provider,
        sort.field,
        sort.descending,
        per_page,
        position,
        rows_before,
    ]
    raw = hashlib.sha256(json.dumps(query, separators=(",", ":")).encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Start:
    """Where a page starts: after the row with sort key `after` (a cursor) or at `rows_before` (a page)."""

    rows_before: int
    per_page: int
    after: tuple[Any, ...] | None = None

    @property
    def page(self) -> int:
        return self.rows_before // self.per_page + 1


def start(cursor: str | None, f: RowFilter, sort: Sort, paging: Pagination) -> Start:
    """The page a request asks for: `page`, or the cursor (with `page` absent or the cursor's own)."""
    if cursor is None:
        return Start(paging.offset, paging.per_page)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position, rows_before, digest = body["p"], body["n"], body["q"]
        fields = key_fields(sort)
        if not (isinstance(position, list) and len(position) == len(fields) and isinstance(digest, str)):
            raise ValueError("not a cursor")
        if _count(rows_before) < 0 or rows_before % paging.per_page:
            raise ValueError("not a page boundary")
        expected = _digest(f, sort, paging.per_page, position, rows_before)
        if not hmac.compare_digest(digest.encode(), expected.encode()):
            raise ValueError("not this query's cursor")
        after = tuple(_PARSE[name](value) for name, value in zip(fields, position, strict=True))
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error, InvalidOperation) as exc:
        raise InvalidCursor() from exc
    found = Start(rows_before, paging.per_page, after)
    if paging.page not in (1, found.page):
        raise InvalidCursor()
    return found


def following(items: Sequence[Any], at: Start, f: RowFilter, sort: Sort, total: int) -> str | None:
    """The cursor of the page after `items` (None when they end the rows)."""
    rows_before = at.rows_before + len(items)
    if len(items) < at.per_page or rows_before >= total:
        return None
    return encode(
        f, sort, at.per_page, [_json_value(_row_value(items[-1], name)) for name in key_fields(sort)], rows_before
    )


def encode(f: RowFilter, sort: Sort, per_page: int, position: list[Any], rows_before: int) -> str:
    """The cursor of the page after the row at `position` (its sort key as JSON values)."""
    body = {"p": position, "n": rows_before, "q": _digest(f, sort, per_page, position, rows_before)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
