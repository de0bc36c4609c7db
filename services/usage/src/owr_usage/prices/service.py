"""Effective prices per model and provider from activity's rows, their drift against the previous period, and
the `price.drift` rule: once per completed UTC week, when a model on a provider costs more per token than the
week before (the worker's daily cron asks for it, through `POST /internal/price-drift`).

Arithmetic is exact (NUMERIC sums, then `Fraction`s); figures are rounded only when they are written out.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.dependencies import Pagination
from owr_shared.logging import get_logger
from owr_usage.alerts import service as alerts
from owr_usage.alerts.service import money
from owr_usage.erasure import service as erasure
from owr_usage.prices.repository import PERIODS, PriceFilter, PriceRepository
from owr_usage.prices.schemas import DriftBasis, PriceRow, PricesReport
from owr_usage.rules import service as rules
from owr_usage.rules.conditions import event
from owr_usage.rules.schemas import DriftParams

log = get_logger(__name__)

MTOK = 1_000_000
# The split is reported only when the rows' mixes differ enough to tell the two prices apart (1 - cos² of the
# angle between the prompt and completion columns) and one price pair explains every row's cost.
MIN_INDEPENDENCE = Fraction(1, 1000)
FIT_TOLERANCE = Fraction(1, 1_000_000)
PRICE_PLACES = Decimal("0.000000001")
PCT_PLACES = Decimal("0.01")
# The drift cron: workspaces per statement, and how recent a stored activity report makes a workspace "busy".
CHUNK = 200
BUSY = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Sums:
    """One period's sums of a group's daily rows (y: cost, p: prompt tokens, c: completion tokens)."""

    rows: int
    requests: int
    prompt: int
    completion: int
    cost: Decimal
    pp: Fraction
    pc: Fraction
    cc: Fraction
    py: Fraction
    cy: Fraction
    yy: Fraction

    @classmethod
    def of(cls, row: Any, prefix: str) -> Sums:
        def get(name: str) -> Any:
            return getattr(row, f"{prefix}_{name}")

        def exact(name: str) -> Fraction:
            return Fraction(get(name))

        return cls(
            rows=int(get("rows")),
            requests=int(get("requests")),
            prompt=int(get("prompt")),
            completion=int(get("completion")),
            cost=Decimal(get("cost")),
            pp=exact("pp"),
            pc=exact("pc"),
            cc=exact("cc"),
            py=exact("py"),
            cy=exact("cy"),
            yy=exact("yy"),
        )

    def blended(self) -> Fraction | None:
        """USD per token, prompt and completion together."""
        tokens = self.prompt + self.completion
        return Fraction(self.cost) / tokens if tokens else None

    def split(self) -> tuple[Fraction, Fraction] | None:
        """(prompt, completion) USD per token by least squares over the daily rows, when they determine it."""
        a, b, d = self.pp, self.pc, self.cc
        det = a * d - b * b
        if a == 0 or d == 0 or det < MIN_INDEPENDENCE * a * d:
            return None
        prompt = (self.py * d - b * self.cy) / det
        completion = (a * self.cy - b * self.py) / det
        if prompt < 0 or completion < 0:
            return None
        # The residual sum of squares, exactly, from the sums alone.
        residual = (
            self.yy
            - 2 * (prompt * self.py + completion * self.cy)
            + prompt * prompt * a
            + 2 * prompt * completion * b
            + completion * completion * d
        )
        return (prompt, completion) if residual <= FIT_TOLERANCE**2 * self.yy else None


def drift(now: Sums, before: Sums) -> tuple[Fraction | None, DriftBasis | None]:
    """How much more this period's tokens cost than the previous period's prices say (0.1 = 10 % more)."""
    previous = before.split()
    if previous is not None:
        expected = now.prompt * previous[0] + now.completion * previous[1]
        if expected > 0:
            return Fraction(now.cost) / expected - 1, "split"
    blended_now, blended_before = now.blended(), before.blended()
    if blended_now is None or not blended_before:
        return None, None
    return blended_now / blended_before - 1, "blended"


def _decimal(value: Fraction | None, places: Decimal) -> Decimal | None:
    if value is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 120  # room for any quotient of bounded money and token counts at the places kept
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(places, rounding=ROUND_HALF_EVEN)


def _per_mtok(value: Fraction | None) -> Decimal | None:
    return _decimal(None if value is None else value * MTOK, PRICE_PLACES)


def price_row(row: Any) -> PriceRow:
    now, before = (Sums.of(row, prefix) for prefix in PERIODS)
    split = now.split()
    change, basis = drift(now, before)
    return PriceRow(
        model=row.model,
        provider=row.provider or None,
        key_id=row.key_id,
        requests=now.requests,
        prompt_tokens=now.prompt,
        completion_tokens=now.completion,
        cost_usd=now.cost,
        usd_per_mtok=_per_mtok(now.blended()),
        usd_per_mtok_prompt=_per_mtok(split[0]) if split else None,
        usd_per_mtok_completion=_per_mtok(split[1]) if split else None,
        previous_usd_per_mtok=_per_mtok(before.blended()),
        drift_pct=_decimal(None if change is None else change * 100, PCT_PLACES),
        drift_basis=basis,
    )


def previous_first(first: date, last: date) -> date:
    """The first day of the period as long as [first, last] that ends the day before `first`."""
    return first - (last - first + timedelta(days=1))


async def report(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    first: date,
    last: date,
    key_id: uuid.UUID | None,
    model: str | None,
    provider: str | None,
    by_key: bool,
    paging: Pagination,
) -> PricesReport:
    before = previous_first(first, last)
    f = PriceFilter(workspace_id, before, first, last, key_id=key_id, model=model, provider=provider, by_key=by_key)
    repo = PriceRepository(session)
    rows = await repo.sums(f, limit=paging.per_page, offset=paging.offset)
    total = int(rows[0].total) if rows else (await repo.count(f) if paging.offset else 0)
    return PricesReport(
        first_day=first,
        last_day=last,
        previous_first_day=before,
        previous_last_day=first - timedelta(days=1),
        items=[price_row(row) for row in rows],
        total=total,
        page=paging.page,
        per_page=paging.per_page,
    )


# --- the `price.drift` rule -----------------------------------------------------------------------------------


def settled_week(day: date) -> date:
    """The Monday of the last UTC week whose activity has settled on `day`: weeks ended at least a day before,
    since OpenRouter's `/activity` has a day only once it completed, and the worker fetches it once a day."""
    yesterday = day - timedelta(days=1)
    return yesterday - timedelta(days=yesterday.weekday()) - timedelta(days=7)


def drift_key(week: date, model: str, provider: str) -> str:
    """The event's dedup key: one per (model, provider, week) in a workspace (hashed: names may be 300 long)."""
    digest = hashlib.sha256(f"{model}\x00{provider}".encode()).hexdigest()[:32]
    return f"price.drift:{week.isoformat()}:{digest}"


async def evaluate_drift(session: AsyncSession, at: datetime) -> int:
    """Raise `price.drift` for each (workspace, model, provider) whose last week settled at `at` cost at least the
    workspace's `min_drift_pct` % more than the week before; each once. How many events were raised.

    Run by the worker's daily cron, after every account's daily `/activity` is in. A workspace with activity
    stored in the last `BUSY` (an account sync reporting its key hashes one by one, a newly linked account's
    first among them) is left for the next day's run, which looks at the same week until the next Monday; the
    week's last run (that Monday's) judges it anyway, so that a sync which always overlaps the cron cannot keep
    a workspace's week from ever being judged."""
    day = at.astimezone(UTC).date()
    week = settled_week(day)
    last_run = settled_week(day + timedelta(days=1)) != week
    end = week + timedelta(days=6)
    before = week - timedelta(days=7)
    repo = PriceRepository(session)
    candidates = await repo.workspaces_with_rows(week, end)
    erased = await erasure.erased_among(session, candidates)
    workspaces = [w for w in candidates if w not in erased]
    raised = busy_count = 0
    for start in range(0, len(workspaces), CHUNK):
        busy = await repo.busy_among(workspaces[start : start + CHUNK], before, end, at - BUSY)
        busy_count += len(busy)
        if busy and not last_run:
            log.debug("price_drift_busy_skipped", week=week.isoformat(), workspace_ids=sorted(map(str, busy)))
        chunk = [w for w in workspaces[start : start + CHUNK] if last_run or w not in busy]
        switches = await rules.switches_of(session, chunk)
        params = {
            w: cast(DriftParams, s["price.drift"].params) for w, s in switches.items() if s["price.drift"].enabled
        }
        if not params:
            continue
        events = [
            _drift_event(row, week, params[row.workspace_id].min_drift_pct, at)
            for row in await repo.weekly_sums(sorted(params), before, week, end)
        ]
        raised += await alerts.raise_events(session, [e for e in events if e is not None])
    log.info(
        "price_drift_evaluated",
        week=week.isoformat(),
        last_run=last_run,
        workspaces=len(workspaces),
        busy=busy_count,
        skipped=0 if last_run else busy_count,
        raised=raised,
    )
    return raised


def _drift_event(row: Any, week: date, min_drift_pct: int, at: datetime) -> alerts.NewEvent | None:
    now, before = (Sums.of(row, prefix) for prefix in PERIODS)
    change, basis = drift(now, before)
    if change is None or change < Fraction(min_drift_pct) / 100:
        return None
    shown = price_row(row)
    data = {
        "model": row.model,
        "provider": row.provider or None,
        "week": {"start": week.isoformat(), "end": (week + timedelta(days=7)).isoformat()},
        "previous_week": {"start": (week - timedelta(days=7)).isoformat(), "end": week.isoformat()},
        "usd_per_mtok": _text(shown.usd_per_mtok),
        "previous_usd_per_mtok": _text(shown.previous_usd_per_mtok),
        "usd_per_mtok_prompt": _text(shown.usd_per_mtok_prompt),
        "usd_per_mtok_completion": _text(shown.usd_per_mtok_completion),
        "drift_pct": _text(shown.drift_pct),
        "drift_basis": basis,
        "requests": now.requests,
        "cost_usd": money(now.cost),
        "threshold": min_drift_pct,
    }
    return event(row.workspace_id, "price.drift", drift_key(week, row.model, row.provider), at, data)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else money(value)
