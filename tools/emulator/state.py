"""The emulator's world: accounts, keys, usage events and a virtual clock. Pure Python, no I/O.

Money is `Decimal` throughout; times are aware UTC datetimes at the edges and integer microseconds inside
the event indexes (exact, and cheap to bisect). Every figure OpenRouter reports is computed from the events
at request time, against the virtual clock, so moving the clock moves every window.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import uuid
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

KEY_PREFIX = "sk-or-v1-"
LIMIT_RESETS = ("daily", "weekly", "monthly")
ACTIVITY_DAYS = 30
KeyKind = Literal["inference", "management"]
ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# uuid5 namespace for endpoint ids: the same provider and permaslug always map to the same endpoint.
_ENDPOINT_NAMESPACE = uuid.UUID("6f1c3e8a-4d2b-5a9e-8c7f-0e1d2c3b4a59")
_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "meta-llama": "DeepInfra",
    "deepseek": "DeepSeek",
    "mistralai": "Mistral",
    "x-ai": "xAI",
}


# ---------------------------------------------------------------- times


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact: no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    """The aware UTC datetime of `to_us`'s microseconds."""
    return _EPOCH + timedelta(microseconds=micros)


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant; a naive one is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """The live API's timestamp format: `2025-02-19T20:52:27.363244+00:00` (always with microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def activity_date(day: date) -> str:
    """`/activity`'s live date format, `YYYY-MM-DD 00:00:00` (the spec says `YYYY-MM-DD`)."""
    return f"{day.isoformat()} 00:00:00"


def day_start(now: datetime) -> datetime:
    """00:00 UTC of `now`'s day."""
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def week_start(now: datetime) -> datetime:
    """00:00 UTC of the Monday of `now`'s week."""
    start = day_start(now)
    return start - timedelta(days=start.weekday())


def month_start(now: datetime) -> datetime:
    """00:00 UTC of the first day of `now`'s month."""
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def limit_window_start(now: datetime, limit_reset: str | None) -> datetime | None:
    """Where the spend counted against a limit starts; None means lifetime (no reset)."""
    if limit_reset == "daily":
        return day_start(now)
    if limit_reset == "weekly":
        return week_start(now)
    if limit_reset == "monthly":
        return month_start(now)
    return None


def activity_days(now: datetime) -> list[date]:
    """The days `/activity` covers: the last 30 completed UTC days, newest first (today never)."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(1, ACTIVITY_DAYS + 1)]


class Clock:
    """Real time plus an offset, so time keeps flowing while tests move it forwards or backwards."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """The emulator's current time (aware UTC)."""
        return datetime.now(UTC) + self.offset

    def set(self, moment: datetime) -> None:
        """Make `now()` read `moment` at this instant."""
        self.offset = moment - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock by `seconds` (negative moves it back)."""
        self.offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        """Back to real time."""
        self.offset = timedelta(0)


# ---------------------------------------------------------------- keys and money


def money_text(value: Decimal) -> str:
    """The exact decimal text of an amount: normalized, never an exponent (`1E+2` becomes `100`)."""
    if value == 0:
        return "0"  # also turns -0 and 0E-10 into plain 0
    return format(value.normalize(), "f")


def new_plaintext() -> str:
    """A fresh key in OpenRouter's shape: `sk-or-v1-` and 64 hex digits."""
    return KEY_PREFIX + secrets.token_hex(32)


def key_hash(plaintext: str) -> str:
    """The key's 64-hex hash as `/keys` shows it: sha256 of the plaintext."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_label(plaintext: str) -> str:
    """The masked key: prefix, the first 3 hex digits, `...`, the last 3."""
    body = plaintext.removeprefix(KEY_PREFIX)
    return f"{KEY_PREFIX}{body[:3]}...{body[-3:]}"


def endpoint_id(provider_name: str, permaslug: str) -> str:
    """A stable endpoint UUID for (provider, permaslug), as `/activity` rows carry one per endpoint."""
    return str(uuid.uuid5(_ENDPOINT_NAMESPACE, f"{provider_name}|{permaslug}"))


def default_provider(model: str) -> str:
    """A plausible provider name for a model slug (`openai/gpt-4.1` -> `OpenAI`)."""
    vendor = model.split("/", 1)[0]
    return _PROVIDERS.get(vendor, vendor.title())


@dataclass
class Account:
    """An OpenRouter account: credits bought, one workspace, one user who creates keys in the UI."""

    id: str
    name: str
    total_credits: Decimal
    workspace_id: str
    user_id: str


@dataclass
class Key:
    """An API key as OpenRouter stores it (never the plaintext: only its hash)."""

    hash: str
    label: str
    kind: KeyKind
    account_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    seq: int
    disabled: bool = False
    limit: Decimal | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    expires_at: datetime | None = None
    creator_user_id: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Event:
    """One slice of usage: what a key spent on one model at one provider at one instant."""

    at_us: int
    key_hash: str
    model: str
    permaslug: str
    provider_name: str
    endpoint_id: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost: Decimal
    byok_cost: Decimal

    @property
    def day(self) -> date:
        return from_us(self.at_us).date()


@dataclass
class Spend:
    cost: Decimal = ZERO
    byok: Decimal = ZERO


class EventIndex:
    """Events sorted by time with running totals, so any window's spend is two bisects and a subtraction."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._times: list[int] = []
        self._cost: list[Decimal] = [ZERO]
        self._byok: list[Decimal] = [ZERO]
        self._sorted = True

    def add(self, event: Event) -> None:
        """Append in O(1) when in time order (the usual case); otherwise re-sort lazily on the next read."""
        if self._sorted and self._times and event.at_us < self._times[-1]:
            self._sorted = False
        self.events.append(event)
        if self._sorted:
            self._times.append(event.at_us)
            self._cost.append(self._cost[-1] + event.cost)
            self._byok.append(self._byok[-1] + event.byok_cost)

    def _ensure_sorted(self) -> None:
        if self._sorted:
            return
        self.events.sort(key=lambda e: e.at_us)
        self._times = [e.at_us for e in self.events]
        self._cost = [ZERO, *itertools.accumulate(e.cost for e in self.events)]
        self._byok = [ZERO, *itertools.accumulate(e.byok_cost for e in self.events)]
        self._sorted = True

    def spend(self, start_us: int | None, end_us: int) -> Spend:
        """Cost and BYOK cost of events with start <= at <= end (start None: from the beginning)."""
        self._ensure_sorted()
        hi = bisect_right(self._times, end_us)
        lo = 0 if start_us is None else bisect_left(self._times, start_us)
        if hi <= lo:
            return Spend()
        return Spend(self._cost[hi] - self._cost[lo], self._byok[hi] - self._byok[lo])

    def between(self, start_us: int, end_us: int) -> list[Event]:
        """Events with start <= at < end."""
        self._ensure_sorted()
        return self.events[bisect_left(self._times, start_us) : bisect_left(self._times, end_us)]


@dataclass
class KeyUsage:
    """What `/key` and `/keys` report about a key's spend at one instant."""

    usage: Decimal
    usage_daily: Decimal
    usage_weekly: Decimal
    usage_monthly: Decimal
    byok_usage: Decimal
    byok_usage_daily: Decimal
    byok_usage_weekly: Decimal
    byok_usage_monthly: Decimal
    limit_remaining: Decimal | None


@dataclass
class ActivityRow:
    """One `/activity` row: a (day, permaslug, endpoint) group summed over its events."""

    day: date
    model: str
    permaslug: str
    endpoint_id: str
    provider_name: str
    usage: Decimal = ZERO
    byok_usage: Decimal = ZERO
    requests: int = 0
    byok_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class EmulatorState:
    """Everything the emulator knows. Methods are synchronous and never block: aiohttp calls them inline."""

    clock: Clock = field(default_factory=Clock)
    accounts: dict[str, Account] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    key_events: dict[str, EventIndex] = field(default_factory=lambda: defaultdict(EventIndex))
    account_events: dict[str, EventIndex] = field(default_factory=lambda: defaultdict(EventIndex))
    # The account of every key ever created, kept after a revoke so its events still belong somewhere.
    key_accounts: dict[str, str] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def reset(self) -> None:
        """Forget every account, key and event; the clock goes back to real time."""
        self.clock.reset()
        self.accounts.clear()
        self.keys.clear()
        self.key_events.clear()
        self.account_events.clear()
        self.key_accounts.clear()

    # -- accounts and keys

    def create_account(
        self, name: str = "Account", total_credits: Decimal = ZERO, account_id: str | None = None
    ) -> Account:
        """A new account with its own workspace and UI user."""
        account_id = account_id or f"acct_{secrets.token_hex(6)}"
        if account_id in self.accounts:
            raise ValueError(f"account {account_id} exists")
        account = Account(
            id=account_id,
            name=name,
            total_credits=total_credits,
            workspace_id=str(uuid.uuid4()),
            user_id="user_" + secrets.token_hex(14),
        )
        self.accounts[account_id] = account
        return account

    def create_key(
        self,
        account_id: str,
        kind: KeyKind = "inference",
        *,
        name: str = "",
        limit: Decimal | None = None,
        limit_reset: str | None = None,
        include_byok_in_limit: bool = False,
        expires_at: datetime | None = None,
        creator_user_id: str | None = None,
        plaintext: str | None = None,
        created_at: datetime | None = None,
    ) -> tuple[Key, str]:
        """Create a key; returns it with its plaintext (the only time the plaintext exists here)."""
        if account_id not in self.accounts:
            raise KeyError(account_id)
        plaintext = plaintext or new_plaintext()
        digest = key_hash(plaintext)
        if digest in self.key_accounts:
            raise ValueError("key exists")
        created = created_at or self.clock.now()
        key = Key(
            hash=digest,
            label=key_label(plaintext),
            kind=kind,
            account_id=account_id,
            name=name,
            created_at=created,
            updated_at=created,
            seq=next(self._seq),
            limit=limit,
            limit_reset=limit_reset,
            include_byok_in_limit=include_byok_in_limit,
            expires_at=expires_at,
            creator_user_id=creator_user_id,
        )
        self.keys[digest] = key
        self.key_accounts[digest] = account_id
        return key, plaintext

    def authenticate(self, token: str) -> Key | None:
        """The live key a bearer token names; None when unknown, revoked, disabled or expired."""
        key = self.keys.get(key_hash(token))
        if key is None or key.disabled or key.expired(self.clock.now()):
            return None
        return key

    def revoke(self, digest: str) -> bool:
        """Delete a key: it vanishes from `/keys` and gets 401; its past events stay in the account's totals."""
        return self.keys.pop(digest, None) is not None

    def list_keys(self, account_id: str, *, include_disabled: bool = False) -> list[Key]:
        """The account's inference keys, most recently created first (management keys are not in `/keys`)."""
        rows = [
            k
            for k in self.keys.values()
            if k.account_id == account_id and k.kind == "inference" and (include_disabled or not k.disabled)
        ]
        rows.sort(key=lambda k: (k.created_at, k.seq), reverse=True)
        return rows

    # -- events and figures

    def add_event(
        self,
        digest: str,
        *,
        at: datetime,
        model: str,
        cost: Decimal,
        byok_cost: Decimal = ZERO,
        permaslug: str | None = None,
        provider_name: str | None = None,
        requests: int = 1,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> Event:
        """Record usage of a (live or revoked) key."""
        account_id = self.key_accounts.get(digest)
        if account_id is None:
            raise KeyError(digest)
        permaslug = permaslug or model
        provider_name = provider_name or default_provider(model)
        event = Event(
            at_us=to_us(at),
            key_hash=digest,
            model=model,
            permaslug=permaslug,
            provider_name=provider_name,
            endpoint_id=endpoint_id(provider_name, permaslug),
            requests=requests,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reasoning_tokens=reasoning_tokens,
            cost=cost,
            byok_cost=byok_cost,
        )
        self.key_events[digest].add(event)
        self.account_events[account_id].add(event)
        return event

    def key_usage(self, key: Key) -> KeyUsage:
        """`/key`'s figures: lifetime and UTC day/week/month spend up to now, and the limit's headroom."""
        now = self.clock.now()
        now_us = to_us(now)
        index = self.key_events[key.hash]
        life = index.spend(None, now_us)
        daily = index.spend(to_us(day_start(now)), now_us)
        weekly = index.spend(to_us(week_start(now)), now_us)
        monthly = index.spend(to_us(month_start(now)), now_us)
        remaining: Decimal | None = None
        if key.limit is not None:
            # The same windows as usage_daily/weekly/monthly (see limit_window_start); no reset means lifetime.
            window = {"daily": daily, "weekly": weekly, "monthly": monthly}.get(key.limit_reset or "", life)
            spent = window.cost + (window.byok if key.include_byok_in_limit else ZERO)
            # Not clamped at zero: an overspent key reads negative live too.
            remaining = key.limit - spent
        return KeyUsage(
            life.cost,
            daily.cost,
            weekly.cost,
            monthly.cost,
            life.byok,
            daily.byok,
            weekly.byok,
            monthly.byok,
            remaining,
        )

    def total_usage(self, account_id: str) -> Decimal:
        """The account's spend up to now (BYOK cost is billed by the provider, not from credits)."""
        return self.account_events[account_id].spend(None, to_us(self.clock.now())).cost

    def activity(self, account_id: str, *, day: date | None = None, key: str | None = None) -> list[ActivityRow]:
        """`/activity` rows of the completed days (or one of them), newest day first."""
        days = activity_days(self.clock.now())
        first, last = (day, day) if day is not None else (days[-1], days[0])
        start_us = to_us(datetime(first.year, first.month, first.day, tzinfo=UTC))
        end_us = to_us(datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1))
        if key is not None:
            index = self.key_events.get(key) if self.key_accounts.get(key) == account_id else None
        else:
            index = self.account_events.get(account_id)
        if index is None:
            return []
        groups: dict[tuple[date, str, str], ActivityRow] = {}
        for event in index.between(start_us, end_us):
            group = (event.day, event.permaslug, event.endpoint_id)
            row = groups.get(group)
            if row is None:
                row = groups[group] = ActivityRow(
                    event.day, event.model, event.permaslug, event.endpoint_id, event.provider_name
                )
            row.usage += event.cost
            row.byok_usage += event.byok_cost
            row.requests += event.requests
            row.byok_requests += event.requests if event.byok_cost else 0
            row.prompt_tokens += event.prompt_tokens
            row.completion_tokens += event.completion_tokens
            row.reasoning_tokens += event.reasoning_tokens
        return sorted(groups.values(), key=lambda r: (-r.day.toordinal(), r.permaslug, r.provider_name))

    def truth(self, account_id: str) -> dict[str, Any]:
        """Ground truth for tests: exact balances and per-key, per-day and per-model sums (money as strings)."""
        now_us = to_us(self.clock.now())
        account = self.accounts[account_id]
        hashes = [h for h, a in self.key_accounts.items() if a == account_id]
        keys: dict[str, Any] = {}
        activity: dict[str, Any] = {}
        for digest in hashes:
            events = [e for e in self.key_events[digest].events if e.at_us <= now_us]
            daily: dict[str, Spend] = defaultdict(Spend)
            models: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
            for event in events:
                day = event.day.isoformat()
                daily[day].cost += event.cost
                daily[day].byok += event.byok_cost
                sums = models[day].setdefault(event.model, _zero_sums())
                _accumulate(sums, event)
            life = self.key_events[digest].spend(None, now_us)
            keys[digest] = {
                "usage": money_text(life.cost),
                "byok_usage": money_text(life.byok),
                "daily": {
                    d: {"cost": money_text(s.cost), "byok_cost": money_text(s.byok)} for d, s in sorted(daily.items())
                },
            }
            activity[digest] = {
                d: {m: _render_sums(s) for m, s in sorted(per_model.items())} for d, per_model in sorted(models.items())
            }
        return {
            "balance": money_text(account.total_credits - self.total_usage(account_id)),
            "keys": keys,
            "activity": activity,
        }


def _zero_sums() -> dict[str, Any]:
    return {
        "cost": ZERO,
        "byok_cost": ZERO,
        "requests": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "reasoning_tokens": 0,
    }


def _accumulate(sums: dict[str, Any], event: Event) -> None:
    sums["cost"] += event.cost
    sums["byok_cost"] += event.byok_cost
    sums["requests"] += event.requests
    sums["prompt_tokens"] += event.prompt_tokens
    sums["completion_tokens"] += event.completion_tokens
    sums["reasoning_tokens"] += event.reasoning_tokens


def _render_sums(sums: dict[str, Any]) -> dict[str, Any]:
    return {k: money_text(v) if isinstance(v, Decimal) else v for k, v in sums.items()}
