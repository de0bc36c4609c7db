"""`/keys/{id}/delete`: the confirmation step without JavaScript names the key and deletes nothing yet."""

from __future__ import annotations

from tests.web.conftest import Browser, text
from tests.web.test_budget_pages import KEY


async def test_deleting_a_key_asks_first(web: Browser) -> None:
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}", KEY)
    r = await web.get(f"/keys/{KEY['id']}/delete")
    said = text(r.text)
    assert "Delete the key “prod”?" in said
    assert f"The key {KEY['label']} and its ciphertext are deleted." in said
    assert f'action="/keys/{KEY["id"]}/delete"' in r.text
    assert [c.method for c in web.gateway.calls] == ["GET"]


FULL_KEY = {
    **KEY,
    "is_active": True,
    "limit_reset": None,
    "expires_at": None,
    "last_synced_at": "2026-12-04T06:00:00+00:00",
    "last_error": None,
}
ANOMALIES = [
    {
        "key_id": KEY["id"],
        "day": "2026-12-03",
        "kind": "spend_spike",
        "score": 68.04,
        "evidence": {"spend_usd": "22.5", "baseline_usd": "1.1", "mad_usd": "0.1", "baseline_days": 4},
    },
    {
        "key_id": KEY["id"],
        "day": "2026-11-20",
        "kind": "new_model",
        "score": 7.5,
        "evidence": {"models": ["x-ai/grok-leak"], "spend_usd": "0.75", "requests": 30},
    },
    {
        "key_id": KEY["id"],
        "day": "2026-11-19",
        "kind": "new_model",
        "score": 0.1,
        "evidence": {"models": ["x-ai/grok-tiny"], "spend_usd": "0.004", "requests": 2},
    },
    {
        "key_id": KEY["id"],
        "day": "2026-11-19",
        "kind": "spend_spike",
        "score": 9.5,
        "evidence": {"spend_usd": "30", "baseline_usd": "3.005", "baseline_days": 9, "baseline": "active_days"},
    },
    {
        "key_id": KEY["id"],
        "day": "2026-11-18",
        "kind": "requests_spend_divergence",
        "score": 12.25,
        "evidence": {
            "moved": "requests",
            "requests": 1200,
            "requests_baseline": 100,
            "spend_usd": "3",
            "baseline_usd": "2.9",
        },
    },
]


async def test_the_key_page_lists_its_anomalies_in_words(web: Browser) -> None:
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}", FULL_KEY)
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}/audit", {"items": []})
    web.gateway.answer("GET", "/api/v1/insights/anomalies", {"items": ANOMALIES})
    r = await web.get(f"/keys/{KEY['id']}")
    assert r.status_code == 200, r.text
    said = text(r.text)
    assert "2026-12-03 Spend spike 68.0 Spent $22.50 against a usual $1.10 on this weekday (median of 4 weeks)." in said
    assert "2026-11-20 New model 7.5 First use of x-ai/grok-leak: $0.75 in 30 requests." in said
    assert "1200 requests against a usual 100, while spend stayed flat ($3.00 against a usual $2.90)." in said
    # The shared formatter: a spend under a cent is never `$0.00`.
    assert "First use of x-ai/grok-tiny: &lt;$0.01 in 2 requests." in said
    assert "Spent $30.00 against a usual $3.00 on its days with spend (median of 9 days)." in said
    (call,) = [c for c in web.gateway.calls if c.path == "/api/v1/insights/anomalies"]
    assert (call.params["key_id"], call.params["per_page"]) == (KEY["id"], "250")


async def test_a_key_without_anomalies_says_so(web: Browser) -> None:
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}", FULL_KEY)
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}/audit", {"items": []})
    web.gateway.answer("GET", "/api/v1/insights/anomalies", {"items": []})
    said = text((await web.get(f"/keys/{KEY['id']}")).text)
    assert "No anomaly: every day looks like this key's usual days." in said
