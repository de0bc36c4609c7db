"""Storing what management keys report: balances, key lists and activity. Every write is idempotent."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_usage.accounts.repository import AccountRepository
from owr_usage.accounts.schemas import AccountKeysReport, ActivityReport, CreditsReport
from owr_usage.anomalies import service as anomalies
from owr_usage.budgets import service as budgets
from owr_usage.erasure import service as erasure
from owr_usage.metrics import (
    ACCOUNT_KEYS_INGESTED,
    ACTIVITY_DAYS_INGESTED,
    ACTIVITY_ROWS_INGESTED,
    BALANCES_INGESTED,
    INGESTED_FOR_ERASED,
)
from owr_usage.reconciliation import service as reconciliation
from owr_usage.rollups import service as rollups
from owr_usage.rules import service as rules

log = get_logger(__name__)


async def store_credits(session: AsyncSession, management_key_id: uuid.UUID, report: CreditsReport) -> None:
    """Store the balance; a repeat of the same observation is a no-op.

    Some accounts answer `/credits` with two zeros: that is "unknown", not a balance of $0.
    """
    if await _erased(session, report.workspace_id):
        return
    stored = await AccountRepository(session).insert_balance(
        {
            "management_key_id": management_key_id,
            "observed_at": report.observed_at,
            "workspace_id": report.workspace_id,
            "total_credits": report.total_credits,
            "total_usage": report.total_usage,
            "known": not (report.total_credits == 0 and report.total_usage == 0),
        }
    )
    BALANCES_INGESTED.labels("stored" if stored else "duplicate").inc()
    if stored:
        await rules.on_balance(session, report.workspace_id, management_key_id)


async def replace_keys(session: AsyncSession, management_key_id: uuid.UUID, report: AccountKeysReport) -> bool:
    """Replace the account's key list with this one, unless a newer list is already stored.

    Returns whether it was applied. A hash listed twice keeps its last row.
    """
    if await _erased(session, report.workspace_id):
        return False
    repo = AccountRepository(session)
    if not await repo.claim_key_list(management_key_id, report.workspace_id, report.observed_at):
        ACCOUNT_KEYS_INGESTED.labels("stale").inc()
        log.info("account_keys_stale", management_key_id=str(management_key_id))
        return False
    by_hash: dict[str, dict[str, Any]] = {}
    for key in report.keys:
        by_hash[key.hash] = {
            **key.model_dump(),
            "management_key_id": management_key_id,
            "workspace_id": report.workspace_id,
            "observed_at": report.observed_at,
        }
    labels = await repo.labels(management_key_id)
    await repo.replace_keys(management_key_id, list(by_hash.values()))
    labels.update(row["label"] for row in by_hash.values() if row["label"] is not None)
    relinked = await rollups.after_key_list(session, report.workspace_id, management_key_id, labels)
    if relinked:
        # A key that left the account takes its spend with it: the account's budgets are looked at too.
        clocks = {report.workspace_id: report.observed_at}
        await budgets.evaluate_keys(session, clocks, relinked, [management_key_id])
        # A key linked anew shows activity's per-model days: all of them are judged again.
        await anomalies.evaluate_keys(session, report.workspace_id, report.observed_at, relinked)
    ACCOUNT_KEYS_INGESTED.labels("replaced").inc()
    log.info("account_keys_replaced", management_key_id=str(management_key_id), keys=len(by_hash))
    return True


async def replace_activity(session: AsyncSession, management_key_id: uuid.UUID, report: ActivityReport) -> int:
    """Replace the key hash's activity of the report's dates; returns how many dates were replaced.

    A date whose stored answer was observed later than this one is kept as it is.
    """
    if await _erased(session, report.workspace_id):
        return 0
    repo = AccountRepository(session)
    dates = report.replaced_dates()
    per_date = Counter(row.date for row in report.rows)
    # Before the claim: it marks the dates fetched, which alone would make a day comparable.
    gaps_before = await reconciliation.gaps_of_hash(session, management_key_id, report.api_key_hash, dates)
    accepted = await repo.claim_activity_days(
        management_key_id,
        report.api_key_hash,
        report.workspace_id,
        report.observed_at,
        {day: per_date.get(day, 0) for day in dates},
    )
    accepted_set = set(accepted)
    numbering: Counter[Any] = Counter()
    rows: list[dict[str, Any]] = []
    for row in report.rows:
        if row.date not in accepted_set:
            continue
        numbering[row.date] += 1
        rows.append(
            {
                **row.model_dump(),
                "management_key_id": management_key_id,
                "api_key_hash": report.api_key_hash,
                "workspace_id": report.workspace_id,
                "row_no": numbering[row.date],
            }
        )
    await repo.replace_activity(management_key_id, report.api_key_hash, accepted, rows)
    rebuilt = await rollups.after_activity(
        session, report.workspace_id, management_key_id, report.api_key_hash, accepted
    )
    clocks = {report.workspace_id: report.observed_at}
    await budgets.evaluate_keys(session, clocks, rebuilt)
    await anomalies.evaluate(session, clocks, [(report.workspace_id, key, day) for key in rebuilt for day in accepted])
    gaps_after = await reconciliation.gaps_of_hash(session, management_key_id, report.api_key_hash, dates)
    reconciliation.count_new(gaps_before, gaps_after)
    ACTIVITY_ROWS_INGESTED.inc(len(rows))
    ACTIVITY_DAYS_INGESTED.labels("replaced").inc(len(accepted))
    ACTIVITY_DAYS_INGESTED.labels("stale").inc(len(dates) - len(accepted))
    log.info("activity_replaced", management_key_id=str(management_key_id), days=len(accepted), rows=len(rows))
    return len(accepted)


async def _erased(session: AsyncSession, workspace_id: uuid.UUID) -> bool:
    """Whether the report's workspace was erased (then nothing is stored); holds its erasure off otherwise."""
    if await erasure.erased_among(session, [workspace_id]):
        INGESTED_FOR_ERASED.inc()
        log.info("report_for_erased_workspace", workspace_id=str(workspace_id))
        return True
    return False
