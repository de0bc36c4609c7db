"""Every sync outcome told to usage's key rules (invalid, expiring, near its limit, syncs failing and recovered).

The key a job is syncing, as keys revealed it (with its workspace and name), is held in `syncing` for the
job's duration; `tell` sends one outcome, best effort: a failure is logged and never fails the sync.
"""

from __future__ import annotations

from contextvars import ContextVar

from pydantic import ValidationError

from owr_shared.logging import get_logger
from owr_shared.wire.alerts import KeyStatusItem
from owr_shared.wire.keys import RevealedItem, StatusReport
from owr_worker.internal import ServiceError, UsageClient

log = get_logger("owr.worker.jobs")

syncing: ContextVar[RevealedItem | None] = ContextVar("owr_worker_syncing", default=None)


async def tell(usage: UsageClient, key_id: str, report: StatusReport) -> None:
    """The outcome at the worker's clock (`last_synced_at`: one clock for a failure's start and its end)."""
    revealed = syncing.get()
    if revealed is None or str(revealed.id) != key_id or report.status not in ("valid", "invalid", "error"):
        return
    try:
        item = KeyStatusItem(
            key_id=revealed.id,
            workspace_id=revealed.workspace_id,
            name=revealed.name[:100] if revealed.name else None,
            status=report.status,
            observed_at=report.last_synced_at,
            error=report.last_error,
        )
        await usage.report_key_status(item)
    except (ServiceError, ValidationError) as exc:
        log.warning("key_status_report_failed", error=str(exc))
