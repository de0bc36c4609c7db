"""Snapshot bodies: the shared wire contract (`owr_shared.wire.usage`), made stricter where usage needs it."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from owr_shared.wire import usage as wire
from owr_shared.wire.fields import WireMoney
from owr_shared.wire.openrouter import KeyInfo
from owr_shared.wire.usage import SnapshotsStored

__all__ = ["KeySnapshot", "SnapshotBatch", "SnapshotItem", "SnapshotsStored"]


class KeySnapshot(KeyInfo):
    """`GET /key`'s `data`, with `usage` and `usage_daily` required: the daily spend rests on them."""

    usage: WireMoney
    usage_daily: WireMoney


class SnapshotItem(wire.SnapshotItem):
    snapshot: KeySnapshot

    @property
    def day(self) -> date:
        """The UTC day the snapshot's windows belong to (`observed_at` is already UTC)."""
        return self.observed_at.date()


class SnapshotBatch(wire.SnapshotBatch):
    items: list[SnapshotItem] = Field(min_length=1, max_length=wire.MAX_SNAPSHOT_BATCH)
