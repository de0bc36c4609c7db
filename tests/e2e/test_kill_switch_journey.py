"""Issue 17's kill switch on the real processes and the emulator: a key budget with `disable_key_on_exceed`, spend
pushed over it, a sync, and the worker disables the key at OpenRouter (the emulator's state and its management
list say so, the key's own calls get 401), `key.disabled` reaches a signed webhook, and `enable-upstream` turns
the key back on at OpenRouter. And the issue's "done means": anomaly -> alert -> kill switch -> re-enable; and the
panic button: a user's `disable-upstream`, undone the same way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_account_email_journey import verified_sign_up
from tests.e2e.test_alerts_journey import Receiver, of_type, receiver  # noqa: F401 - the fixture
from tests.e2e.test_sync_journey import Watcher, at, last_monday_before, spend, wait_for
from tests.support.mail import Inbox

pytestmark = pytest.mark.e2e


async def upstream(watcher: Watcher, key_id: str) -> dict[str, Any]:
    r = await watcher.client.get(f"/api/v1/keys/{key_id}/upstream", headers=watcher.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def webhook_secret(watcher: Watcher, to: Receiver) -> str:
    """A webhook channel to the test's receiver; its signing secret."""
    body = {"type": "webhook", "name": "ops", "url": to.url}
    r = await watcher.client.post("/api/v1/channels", headers=watcher.headers, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


async def linked_upstream(watcher: Watcher, key_id: str) -> dict[str, Any]:
    """The key's upstream view once usage linked it to its account's key list."""

    async def linked() -> dict[str, Any] | None:
        view = await upstream(watcher, key_id)
        return view if view["linked"] else None

    return dict(await wait_for(linked, what="the key linked to its account's key list"))


async def emulated(emulator: EmulatorAdmin, key_hash: str, *, disabled: bool) -> dict[str, Any]:
    """The key's state at the emulator once it is disabled (or enabled) there."""

    async def reached() -> dict[str, Any] | None:
        state = await emulator.key_state(key_hash)
        return state if state["disabled"] is disabled else None

    what = f"the key {'disabled' if disabled else 'enabled'} at the emulator"
    return dict(await wait_for(reached, seconds=60, what=what))


async def test_an_exceeded_budget_disables_the_key_upstream_announces_it_and_enable_undoes_it(
    system: System,
    emulator: EmulatorAdmin,
    receiver: Receiver,  # noqa: F811
    mail_inbox: Inbox,
) -> None:
    receiver.failures = 0
    monday = last_monday_before(datetime.now(UTC).date()) - timedelta(days=14)
    tuesday = monday + timedelta(days=1)
    await emulator.set_clock(at(tuesday, 9))
    account = await emulator.account("100")
    management = await emulator.key(account, "management", name="ops")
    key = await emulator.key(account, "inference", name="agent")

    async with (
        httpx.AsyncClient(base_url=system.gateway, timeout=15) as client,
        httpx.AsyncClient(base_url=f"{system.emulator}/api/v1", timeout=10) as openrouter,
    ):
        # Alerts need a verified address.
        watcher = Watcher(client, await verified_sign_up(client, mail_inbox, "kill"))
        ids = await watcher.add_account(management, key)
        key_id = ids["agent"]
        await watcher.sync(*ids.values())

        view = await linked_upstream(watcher, key_id)
        assert (view["disabled"], view["management_key_id"], view["actions"]) == (False, ids["management"], [])

        secret = await webhook_secret(watcher, receiver)
        body = {"name": "agent", "scope": {"type": "key", "id": key_id}, "amount_usd": "10", "period": "weekly"}
        r = await client.post("/api/v1/budgets", headers=watcher.headers, json={**body, "disable_key_on_exceed": True})
        assert r.status_code == 201, r.text
        budget_id = r.json()["id"]
        assert r.json()["disable_key_on_exceed"] is True

        # Spend over the budget, then a sync: exceeded, and the worker disables the key at OpenRouter.
        await emulator.set_clock(at(tuesday, 12))
        await emulator.events([spend(key["hash"], at(tuesday, 11), "12.5")])
        await watcher.sync(key_id)

        await emulated(emulator, key["hash"], disabled=True)
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 401
        listed = await openrouter.get(
            "/keys", params={"include_disabled": "true"}, headers={"Authorization": f"Bearer {management['key']}"}
        )
        assert [k["disabled"] for k in listed.json()["data"] if k["hash"] == key["hash"]] == [True]

        async def announced() -> list[tuple[str, dict[str, Any]]] | None:
            return of_type(receiver.accepted(secret), "key.disabled") or None

        [(_, event)] = await wait_for(announced, seconds=60, what="key.disabled at the webhook")
        assert event["data"]["key_id"] == key_id
        assert (event["data"]["budget_id"], event["data"]["source"]) == (budget_id, "budget")
        assert event["data"]["label"] == key["label"]
        view = await upstream(watcher, key_id)
        assert view["disabled"] is True
        [action] = view["actions"]
        assert (action["kind"], action["status"], action["budget_id"]) == ("disable", "done", budget_id)
        # The management key was revealed for it, and that reveal is in its audit.
        r = await client.get(f"/api/v1/keys/{ids['management']}/audit", headers=watcher.headers)
        assert any(e["action"] == "revealed" for e in r.json()["items"])

        # Syncing again in the same week disables nothing more; the key's own sync gets OpenRouter's 401, which is
        # the kill switch's doing, not an invalid key's: no `key.invalid`.
        await emulator.set_clock(at(tuesday, 13))
        await watcher.sync(ids["management"])
        await watcher.sync(key_id, status="invalid")
        await asyncio.sleep(3)
        assert len((await upstream(watcher, key_id))["actions"]) == 1
        assert of_type(receiver.accepted(secret), "key.invalid") == []

        # Re-enabled from the API, and the key works at OpenRouter again.
        asked = datetime.now(UTC)
        r = await client.post(f"/api/v1/keys/{key_id}/enable-upstream", headers=watcher.headers)
        assert r.status_code == 202, r.text
        assert r.json()["kind"] == "enable"

        await emulated(emulator, key["hash"], disabled=False)
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 200

        async def enable_done() -> dict[str, Any] | None:
            view = await upstream(watcher, key_id)
            return view if view["actions"][0]["status"] == "done" else None

        view = await wait_for(enable_done, what="the enable action done")
        assert view["disabled"] is False
        # The enable asks for a sync of the key itself: valid again at once, not at the next daily validation
        # (the due scan skips invalid keys).
        await watcher.synced_since(asked, key_id, status="valid")

        # A suggested limit applied in one call, BYOK spend counted toward it.
        limit = {"amount_usd": 20, "reset": "weekly", "include_byok_in_limit": True}
        r = await client.post(f"/api/v1/keys/{key_id}/apply-limit", headers=watcher.headers, json=limit)
        assert r.status_code == 202, r.text

        async def limited() -> dict[str, Any] | None:
            state = await emulator.key_state(key["hash"])
            return state if state["limit"] is not None else None

        state = await wait_for(limited, seconds=60, what="the limit set at the emulator")
        assert (Decimal(str(state["limit"])), state["limit_reset"]) == (Decimal(20), "weekly")
        assert state["include_byok_in_limit"] is True

        # Each write made at OpenRouter is in the key's audit trail, with why and who asked.
        async def audited() -> list[dict[str, Any]] | None:
            r = await client.get(f"/api/v1/keys/{key_id}/audit", headers=watcher.headers)
            found = [e for e in r.json()["items"] if e["action"].startswith("upstream_")]
            return found if len(found) == 3 else None

        trail = await wait_for(audited, what="three upstream writes in the key's audit")
        assert [e["action"] for e in trail] == ["upstream_limit_set", "upstream_enabled", "upstream_disabled"]
        assert (trail[2]["details"]["source"], trail[2]["actor_type"]) == ("budget", "service")
        assert trail[1]["details"]["source"] == "user"

    logs = system.logs()
    assert key["key"] not in logs
    assert management["key"] not in logs
    assert secret not in logs


async def test_an_anomaly_past_the_key_s_threshold_disables_it_announces_it_and_enable_undoes_it(
    system: System,
    emulator: EmulatorAdmin,
    receiver: Receiver,  # noqa: F811
    mail_inbox: Inbox,
) -> None:
    """The issue's "done means": anomaly -> alert -> kill switch -> re-enable, against the emulator."""
    receiver.failures = 0
    spike_day = datetime.now(UTC).date() - timedelta(days=2)  # the day after it is still in the past
    await emulator.set_clock(at(spike_day, 6))
    account = await emulator.account("500")
    management = await emulator.key(account, "management", name="ops")
    leaky = await emulator.key(account, "inference", name="leaky")
    # Four weeks of about a dollar a day (four same-weekday days before the spike's: the baseline's minimum is 3).
    history = [
        spend(leaky["hash"], at(spike_day - timedelta(days=n), 10), str(Decimal("1.00") + Decimal(n % 3) / 10))
        for n in range(1, 29)
    ]
    await emulator.events(history)

    async with (
        httpx.AsyncClient(base_url=system.gateway, timeout=15) as client,
        httpx.AsyncClient(base_url=f"{system.emulator}/api/v1", timeout=10) as openrouter,
    ):
        # Alerts need a verified address.
        watcher = Watcher(client, await verified_sign_up(client, mail_inbox, "kill"))
        secret = await webhook_secret(watcher, receiver)
        ids = await watcher.add_account(management, leaky)
        key_id = ids["leaky"]
        await watcher.sync(*ids.values())

        await linked_upstream(watcher, key_id)
        r = await client.put(f"/api/v1/keys/{key_id}/kill-switch", headers=watcher.headers, json={"anomaly_score": 6})
        assert r.status_code == 200, r.text
        assert r.json()["anomaly_score"] == 6

        # The next day: twenty times the usual spend on the day before, and a sync.
        await emulator.set_clock(at(spike_day + timedelta(days=1), 6))
        await emulator.events([spend(leaky["hash"], at(spike_day, 8 + n), "2.25") for n in range(10)])
        await watcher.sync(*ids.values())

        async def anomaly_and_kill() -> tuple[dict[str, Any], dict[str, Any]] | None:
            accepted = receiver.accepted(secret)
            anomalies, disabled = of_type(accepted, "key.anomaly"), of_type(accepted, "key.disabled")
            return (anomalies[0][1], disabled[0][1]) if anomalies and disabled else None

        anomaly, killed = await wait_for(anomaly_and_kill, seconds=60, what="key.anomaly and key.disabled")
        assert (anomaly["data"]["key_id"], anomaly["data"]["kind"]) == (key_id, "spend_spike")
        assert anomaly["data"]["score"] >= 6
        assert (killed["data"]["key_id"], killed["data"]["source"]) == (key_id, "anomaly")
        assert killed["data"]["evidence"]["kind"] == "spend_spike"
        assert killed["data"]["evidence"]["day"] == str(spike_day)
        assert (await emulator.key_state(leaky["hash"]))["disabled"] is True
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {leaky['key']}"})).status_code == 401

        r = await client.post(f"/api/v1/keys/{key_id}/enable-upstream", headers=watcher.headers)
        assert r.status_code == 202, r.text

        await emulated(emulator, leaky["hash"], disabled=False)
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {leaky['key']}"})).status_code == 200
        assert len(of_type(receiver.accepted(secret), "key.disabled")) == 1


async def test_a_user_disables_a_leaked_key_at_openrouter_and_enables_it_again(
    system: System,
    emulator: EmulatorAdmin,
    receiver: Receiver,  # noqa: F811
    mail_inbox: Inbox,
) -> None:
    """The panic button: `disable-upstream` with the user's words, the emulator's key disabled (its calls 401),
    `key.disabled` at the webhook saying who, the key's audit trail; a second ask is a 409; `enable-upstream`
    turns it back on."""
    receiver.failures = 0
    tuesday = last_monday_before(datetime.now(UTC).date()) - timedelta(days=6)
    await emulator.set_clock(at(tuesday, 9))
    account = await emulator.account("100")
    management = await emulator.key(account, "management", name="ops")
    key = await emulator.key(account, "inference", name="leaked")

    async with (
        httpx.AsyncClient(base_url=system.gateway, timeout=15) as client,
        httpx.AsyncClient(base_url=f"{system.emulator}/api/v1", timeout=10) as openrouter,
    ):
        watcher = Watcher(client, await verified_sign_up(client, mail_inbox, "panic"))
        me = (await client.get("/api/v1/auth/me", headers=watcher.headers)).json()
        secret = await webhook_secret(watcher, receiver)
        ids = await watcher.add_account(management, key)
        key_id = ids["leaked"]
        await watcher.sync(*ids.values())

        await linked_upstream(watcher, key_id)
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 200

        r = await client.post(
            f"/api/v1/keys/{key_id}/disable-upstream", headers=watcher.headers, json={"reason": "pushed to GitHub"}
        )
        assert r.status_code == 202, r.text
        asked = r.json()
        assert (asked["kind"], asked["source"], asked["requested_by"]) == ("disable", "user", me["id"])

        await emulated(emulator, key["hash"], disabled=True)
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 401

        async def announced() -> list[tuple[str, dict[str, Any]]] | None:
            return of_type(receiver.accepted(secret), "key.disabled") or None

        [(_, event)] = await wait_for(announced, seconds=60, what="key.disabled at the webhook")
        assert (event["data"]["key_id"], event["data"]["source"]) == (key_id, "user")
        assert (event["data"]["requested_by"], event["data"]["action_id"]) == (me["id"], asked["id"])
        assert event["data"]["reason"] == "disabled at OpenRouter by a user: pushed to GitHub"

        async def disable_done() -> dict[str, Any] | None:
            view = await upstream(watcher, key_id)
            return view if view["actions"][0]["status"] == "done" and view["disabled"] else None

        await wait_for(disable_done, what="the disable action done")
        r = await client.post(f"/api/v1/keys/{key_id}/disable-upstream", headers=watcher.headers)
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/key-already-disabled")
        assert f"/api/v1/keys/{key_id}/enable-upstream" in r.json()["detail"]

        r = await client.post(f"/api/v1/keys/{key_id}/enable-upstream", headers=watcher.headers)
        assert r.status_code == 202, r.text

        await emulated(emulator, key["hash"], disabled=False)
        assert (await openrouter.get("/key", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 200

        async def audited() -> list[dict[str, Any]] | None:
            r = await client.get(f"/api/v1/keys/{key_id}/audit", headers=watcher.headers)
            found = [e for e in r.json()["items"] if e["action"].startswith("upstream_")]
            return found if len(found) == 2 else None

        enabled, disabled = await wait_for(audited, what="the disable and the enable in the key's audit")
        assert (disabled["action"], enabled["action"]) == ("upstream_disabled", "upstream_enabled")
        assert (disabled["details"]["source"], disabled["details"]["requested_by"]) == ("user", me["id"])
        assert disabled["details"]["reason"] == event["data"]["reason"]
        assert len(of_type(receiver.accepted(secret), "key.disabled")) == 1

    logs = system.logs()
    assert key["key"] not in logs
    assert management["key"] not in logs
