"""The wire contract: each OpenRouter quirk parsed once, the internal bodies, and the exact-decimal codec."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from owr_shared.logging import LONG_TOKEN
from owr_shared.wire import codec
from owr_shared.wire.keys import StatusBatch, StatusItem, StatusReport
from owr_shared.wire.openrouter import AccountKey, ActivityRow, Credits, KeyInfo
from owr_shared.wire.usage import ActivityReport, SnapshotBatch, SnapshotItem

AT = datetime(2026, 8, 23, 10, 15, 30, tzinfo=UTC)
WS = "2b0a7f61-8a1e-4a4e-9d55-0d7c4f3f2a10"


# --- OpenRouter's quirks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "management"),
    [
        ({"is_provisioning_key": True}, True),  # older answers carry only the deprecated name
        ({"is_provisioning_key": False}, False),
        ({"is_management_key": None, "is_provisioning_key": True}, True),
        ({"is_management_key": False, "is_provisioning_key": True}, False),  # the current name wins
        ({"is_management_key": True, "is_provisioning_key": False}, True),
        ({"is_provisioning_key": "yes"}, False),  # not a boolean: not said
        ({}, False),
    ],
)
def test_provisioning_alias(body, management):
    assert KeyInfo.model_validate(body).is_management_key is management


@pytest.mark.parametrize(
    "value",
    ["2026-08-22", "2026-08-22 00:00:00", " 2026-08-22 00:00:00 ", "2026-08-22T00:00:00Z", "2026-08-22 00:00:00+00:00"],
)
def test_activity_date_accepts_the_spec_and_the_live_form(value):
    assert ActivityRow.model_validate({"date": value, "model": "m"}).date == date(2026, 8, 22)


@pytest.mark.parametrize("value", ["2026-08-22 13:00:00", "22/08/2026", "2026-02-30"])
def test_activity_date_refuses_other_times_and_forms(value):
    with pytest.raises(ValidationError):
        ActivityRow.model_validate({"date": value, "model": "m"})


def test_null_means_default_and_unknown_fields_are_ignored():
    info = KeyInfo.model_validate(
        {"usage": 1, "usage_weekly": None, "is_free_tier": None, "limit": None, "rate_limit": {"requests": -1}}
    )
    assert (info.usage_weekly, info.is_free_tier, info.limit) == (Decimal(0), False, None)
    assert "rate_limit" not in info.model_dump()
    row = AccountKey.model_validate({"hash": "h", "disabled": None, "workspace_id": "theirs", "usage": None})
    assert (row.disabled, row.usage) == (False, Decimal(0))
    assert "workspace_id" not in row.model_dump()


def test_money_is_exact_and_bounded():
    assert Credits.model_validate(codec.loads('{"total_credits": 100.5, "total_usage": 25.7512345678}')) == Credits(
        total_credits=Decimal("100.5"), total_usage=Decimal("25.7512345678")
    )
    for bad in (Decimal("1e13"), Decimal("0." + "1" * 40), "NaN"):
        with pytest.raises(ValidationError):
            KeyInfo.model_validate({"usage": bad})


def test_times_are_kept_in_utc():
    plus_two = timezone(timedelta(hours=2))
    assert KeyInfo(expires_at=datetime(2026, 1, 1, 2, tzinfo=plus_two)).expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert KeyInfo.model_validate({"expires_at": "2026-01-01T00:00:00"}).expires_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_key_figures_are_shared_by_key_and_key_rows():
    figures = {"label": "sk-or-v1-abc...123", "limit": 10, "usage_monthly": "0.5", "byok_usage": 1}
    assert KeyInfo.model_validate(figures).model_dump(include=set(figures)) == AccountKey.model_validate(
        {**figures, "hash": "h"}
    ).model_dump(include=set(figures))


# --- internal bodies --------------------------------------------------------------------------------------


def test_a_status_report_sends_only_what_it_was_built_with():
    report = StatusReport(status="error", last_synced_at=AT, last_error="OpenRouter unavailable (503)")
    assert codec.loads(codec.encode(report, exclude_unset=True)) == {
        "status": "error",
        "last_synced_at": "2026-08-23T10:15:30+00:00",
        "last_error": "OpenRouter unavailable (503)",
    }
    item = StatusItem.model_validate({**report.model_dump(exclude_unset=True), "id": WS})
    batch = codec.loads(codec.encode(StatusBatch(items=[item]), exclude_unset=True))
    assert set(batch["items"][0]) == {"id", "status", "last_synced_at", "last_error"}
    # Parsed back on keys' side, the fields left out stay unset ("keep the stored value").
    assert StatusBatch.model_validate(batch).items[0].model_fields_set == {
        "id",
        "status",
        "last_synced_at",
        "last_error",
    }


def test_a_status_report_refuses_an_unknown_limit_reset_and_naive_times():
    with pytest.raises(ValidationError):
        StatusReport(status="valid", last_synced_at=AT, limit_reset="Every Tuesday")
    with pytest.raises(ValidationError):
        StatusReport(status="valid", last_synced_at=datetime(2026, 1, 1))


def test_a_snapshot_round_trips_with_every_digit():
    info = KeyInfo.model_validate(codec.loads('{"usage": 131.2, "usage_daily": 0.1015644762, "label": "x"}'))
    item = SnapshotItem(key_id=uuid.uuid4(), workspace_id=WS, observed_at=AT, snapshot=info)
    wire = codec.encode(SnapshotBatch(items=[item]))
    assert b'"usage_daily":0.1015644762' in wire
    assert SnapshotBatch.model_validate(codec.loads(wire)).items[0] == item


def test_observed_at_must_be_in_sane_years():
    with pytest.raises(ValidationError):
        ActivityReport(workspace_id=WS, observed_at=datetime(1999, 12, 31, tzinfo=UTC), api_key_hash="h")


# --- codec and token pattern -----------------------------------------------------------------------------


def test_decimals_are_written_as_exact_numbers():
    body = codec.dumps({"a": Decimal("0.1015644762"), "b": Decimal("1E+2"), "c": Decimal("-0.000000000001")})
    assert body == b'{"a":0.1015644762,"b":100,"c":-0.000000000001}'
    assert codec.loads(body)["a"] == Decimal("0.1015644762")


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}'])
def test_non_finite_numbers_are_malformed_json(raw):
    with pytest.raises(codec.NonFiniteNumber):
        codec.loads(raw)
    with pytest.raises(json.JSONDecodeError):  # so FastAPI and the worker treat it as malformed
        codec.loads(raw)


def test_long_tokens_are_found():
    assert LONG_TOKEN.sub("***", "key " + "ab" * 32 + " refused") == "key *** refused"
    assert LONG_TOKEN.search("gen-1234 short") is None
