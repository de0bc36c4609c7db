"""ARQ jobs: plain `async def job(ctx, ...)`; shared clients live in `ctx`; safe to run twice."""

from __future__ import annotations

import time
from typing import Any

from owr_worker.metrics import HEARTBEAT

HEARTBEAT_KEY = "owr:worker:heartbeat"


async def record_heartbeat(ctx: dict[str, Any]) -> float:
    """Record that the cron loop is alive; readiness and alerts read it. Idempotent: last write wins."""
    now = time.time()
    await ctx["redis"].set(HEARTBEAT_KEY, f"{now:.3f}", ex=600)
    HEARTBEAT.set(now)
    return now
