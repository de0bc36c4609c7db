"""The built-in rules: switches and parameters, and each rule firing once and recovering once."""

from __future__ import annotations

from datetime import timedelta

from tests.usage.alerting import Key, events, key_status, monday, moment, status_item


async def test_an_invalid_key_fires_once_until_it_is_valid_again(ingest, alice, db_connection):
    key = Key(ingest, alice)
    day = monday()
    await key.sync(moment(day, 9), "1")
    assert await key_status(ingest, status_item(key, "valid", moment(day, 9))) == 0
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 10))) == 1
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 11))) == 0
    assert await key_status(ingest, status_item(key, "valid", moment(day, 12))) == 0
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 13))) == 1
    raised = await events(db_connection, alice, "key.invalid")
    assert len(raised) == 2
    assert raised[0]["data"] == {
        "key_id": key.id,
        "key_name": "agent",
        "label": key.label,
        "since": moment(day, 10).isoformat(),
    }
