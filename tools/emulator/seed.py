"""`--seed demo`: one funded account, a management key, three inference keys and ~35 days of varied usage.

Everything is deterministic except where "now" falls: the same plaintext keys every run (so demos and
docs can use `DEMO_KEYS`), and the same usage pattern laid out over the 35 days before the clock's now.
These are fake keys for a fake server; they open nothing real.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from tools.emulator.state import KEY_PREFIX, EmulatorState, day_start

DEMO_ACCOUNT_ID = "acct_demo"
DEMO_DAYS = 35
_TEN_DECIMALS = Decimal("1E-10")
_MILLION = Decimal(1_000_000)
BYOK_FEE = Decimal("0.05")  # OpenRouter charges 5% of the provider cost on BYOK requests


def _demo_plaintext(name: str) -> str:
    return KEY_PREFIX + hashlib.sha256(f"owr-emulator-demo:{name}".encode()).hexdigest()


# name -> plaintext; stable across runs
DEMO_KEYS: dict[str, str] = {
    name: _demo_plaintext(name) for name in ("management", "production", "staging", "research")
}


@dataclass(frozen=True)
class _Model:
    slug: str
    permaslug: str
    providers: tuple[str, ...]
    prompt_per_million: Decimal
    completion_per_million: Decimal
    reasons: bool = False


MODELS = (
    _Model("openai/gpt-4.1", "openai/gpt-4.1-2025-04-14", ("OpenAI", "Azure"), Decimal(2), Decimal(8)),
    _Model(
        "anthropic/claude-sonnet-4",
        "anthropic/claude-4-sonnet-20250522",
        ("Anthropic", "Google Vertex", "Amazon Bedrock"),
        Decimal(3),
        Decimal(15),
    ),
    _Model(
        "google/gemini-2.5-flash",
        "google/gemini-2.5-flash",
        ("Google AI Studio", "Google Vertex"),
        Decimal("0.3"),
        Decimal("2.5"),
    ),
    _Model(
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/llama-3.3-70b-instruct",
        ("DeepInfra", "Together"),
        Decimal("0.13"),
        Decimal("0.39"),
    ),
    _Model(
        "deepseek/deepseek-r1",
        "deepseek/deepseek-r1",
        ("DeepSeek", "Fireworks"),
        Decimal("0.55"),
        Decimal("2.19"),
        reasons=True,
    ),
)


@dataclass(frozen=True)
class _Profile:
    """How one demo key is used: events a day, which models, what share of requests is BYOK."""

    name: str
    events_per_day: tuple[int, int]
    models: tuple[int, ...]
    byok_share: float


_PROFILES = (
    _Profile("production", (4, 9), (0, 1, 2), 0.0),
    _Profile("staging", (1, 4), (2, 3), 0.0),
    _Profile("research", (2, 6), (1, 3, 4), 0.5),
)


@dataclass(frozen=True)
class DemoSeed:
    """What `--seed demo` created: the account and the keys' plaintexts by name."""

    account_id: str
    management_key: str
    inference_keys: dict[str, str]


def seed_demo(state: EmulatorState) -> DemoSeed:
    """Fill an empty state with the demo world, relative to the state's clock."""
    now = state.clock.now()
    account = state.create_account("Demo", Decimal(500), account_id=DEMO_ACCOUNT_ID)
    created = day_start(now) - timedelta(days=DEMO_DAYS + 5)
    settings: dict[str, dict[str, object]] = {
        "production": {"limit": Decimal(200), "limit_reset": "monthly"},
        "staging": {"limit": Decimal("0.5"), "limit_reset": "daily", "include_byok_in_limit": True},
        "research": {},
    }
    state.create_key(
        account.id,
        "management",
        name="Watcher",
        plaintext=DEMO_KEYS["management"],
        creator_user_id=account.user_id,
        created_at=created,
    )
    hashes: dict[str, str] = {}
    for n, (name, extra) in enumerate(settings.items()):
        key, _ = state.create_key(
            account.id,
            "inference",
            name=name.title(),
            plaintext=DEMO_KEYS[name],
            creator_user_id=account.user_id,
            created_at=created + timedelta(hours=n + 1),
            limit=extra.get("limit"),  # type: ignore[arg-type]
            limit_reset=extra.get("limit_reset"),  # type: ignore[arg-type]
            include_byok_in_limit=bool(extra.get("include_byok_in_limit", False)),
        )
        hashes[name] = key.hash
    for at, name, fields in sorted(_demo_events(now), key=lambda e: e[0]):
        state.add_event(hashes[name], at=at, **fields)  # type: ignore[arg-type]
    return DemoSeed(account.id, DEMO_KEYS["management"], {name: DEMO_KEYS[name] for name in settings})


def _demo_events(now: datetime) -> list[tuple[datetime, str, dict[str, object]]]:
    rng = random.Random(20260401)  # noqa: S311 - reproducible demo data, not security
    events: list[tuple[datetime, str, dict[str, object]]] = []
    today = day_start(now)
    for days_ago in range(DEMO_DAYS, -1, -1):
        day = today - timedelta(days=days_ago)
        weekend = day.weekday() >= 5
        for profile in _PROFILES:
            low, high = profile.events_per_day
            for _ in range(rng.randint(low, high) // (2 if weekend else 1)):
                at = day + timedelta(seconds=rng.randrange(86_400), microseconds=rng.randrange(1_000_000))
                model = MODELS[rng.choice(profile.models)]
                requests = rng.randint(1, 12)
                prompt = rng.randint(200, 12_000) * requests
                completion = rng.randint(40, 2_500) * requests
                reasoning = rng.randint(0, completion // 2) if model.reasons else 0
                price = (prompt * model.prompt_per_million + completion * model.completion_per_million) / _MILLION
                price = price.quantize(_TEN_DECIMALS)
                byok = rng.random() < profile.byok_share
                if at > now:
                    continue  # keep drawing so the pattern does not depend on the hour of the seed
                events.append(
                    (
                        at,
                        profile.name,
                        {
                            "model": model.slug,
                            "permaslug": model.permaslug,
                            "provider_name": rng.choice(model.providers),
                            "requests": requests,
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "reasoning_tokens": reasoning,
                            # A BYOK request bills the provider's cost to the user's own provider key and
                            # only OpenRouter's fee to credits.
                            "cost": (price * BYOK_FEE).quantize(_TEN_DECIMALS) if byok else price,
                            "byok_cost": price if byok else Decimal(0),
                        },
                    )
                )
    return events
