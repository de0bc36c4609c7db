"""The key page and the insights pages filled, in a real browser (the other browser journeys see them empty):
an emulator account whose key spiked (an anomaly), paid more per token than the period before (a price drift),
was billed late (a reconciliation gap) and has no limit, beside a key of the account nobody stored (two hygiene
findings). axe checks each page as filled, the key page also with its "Disable at OpenRouter…" form open; then
the form is driven by keyboard alone, and the page shows the disable under way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_kill_switch_journey import emulated, linked_upstream, upstream
from tests.e2e.test_sync_journey import Watcher, at, spend, wait_for
from tests.e2e.test_web_journey import api_headers, browser, console_problems, context, register  # noqa: F401
from tests.support.browser import axe_violations, screenshot

pytestmark = pytest.mark.e2e

REASON = "pushed to a public repository"


async def filled_workspace(watcher: Watcher, emulator: EmulatorAdmin, d0: date) -> dict[str, Any]:
    """Through the emulator and the real sync: four weeks of about a dollar a day on model 0 and a twentyfold
    spike the day before d0 (the anomaly; dearer tokens than the period before, so the price drifts up), then
    0.04 billed onto d0 after d1's snapshot (the reconciliation test's pair of gaps, on d0 and d1)."""
    d1, d2 = d0 + timedelta(days=1), d0 + timedelta(days=2)
    await emulator.set_clock(at(d0, 6))
    account = await emulator.account("500")
    management = await emulator.key(account, "management", name="ops")
    leaky = await emulator.key(account, "inference", name="leaky")
    spare = await emulator.key(account, "inference", name="spare")  # in the account, never stored here
    history = [
        spend(leaky["hash"], at(d0 - timedelta(days=n), 10), str(Decimal("1.00") + Decimal(n % 3) / 10))
        for n in range(2, 30)
    ]
    spike = [spend(leaky["hash"], at(d0 - timedelta(days=1), 8 + n), "2.25") for n in range(10)]
    await emulator.events([*history, *spike, spend(leaky["hash"], at(d0, 5), "0.3")])
    ids = await watcher.add_account(management, leaky)
    await watcher.sync(*ids.values())

    await emulator.set_clock(at(d1, 6))
    await emulator.events([spend(leaky["hash"], at(d1, 5), "0.5", 1)])
    await watcher.sync(*ids.values())
    await emulator.events([spend(leaky["hash"], at(d0, 12), "0.04", 2)])  # billed late, onto d0
    await emulator.set_clock(at(d2, 6))
    await watcher.sync(*ids.values())
    return {"ids": ids, "management": management, "leaky": leaky, "spare": spare}


async def listed(watcher: Watcher, path: str, **params: str) -> list[dict[str, Any]]:
    r = await watcher.client.get(path, headers=watcher.headers, params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_filled_key_and_insights_pages_are_accessible_and_the_disable_form_works_by_keyboard(
    system: System,
    browser: Any,  # noqa: F811 - fixture
    context: Any,  # noqa: F811 - fixture
    emulator: EmulatorAdmin,
) -> None:
    page = await context.new_page()
    problems = console_problems(page)
    email = await register(page, system)
    d0 = datetime.now(UTC).date() - timedelta(days=4)
    spike_day, d1 = d0 - timedelta(days=1), d0 + timedelta(days=1)

    client = httpx.AsyncClient(base_url=system.gateway, timeout=15)
    # axe is injected as a script of its own: this context alone bypasses the pages' CSP.
    checker = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    try:
        watcher = Watcher(client, await api_headers(system, email))
        world = await filled_workspace(watcher, emulator, d0)
        key_id = world["ids"]["leaky"]
        window = {"from": str(d0 - timedelta(days=29)), "to": str(d1)}

        async def spiked() -> bool:
            found = await listed(watcher, "/api/v1/insights/anomalies", key_id=key_id, **window)
            return (str(spike_day), "spend_spike") in {(a["day"], a["kind"]) for a in found}

        async def gaps() -> bool:
            found = await listed(watcher, "/api/v1/insights/reconciliation", **window)
            return {g["day"] for g in found} >= {str(d0), str(d1)}

        await wait_for(spiked, what="the spike listed as an anomaly")
        await wait_for(gaps, what="the late billing's two reconciliation gaps")
        await linked_upstream(watcher, key_id)
        secrets = [world[name]["key"] for name in ("management", "leaky", "spare")]
        key_path = f"/keys/{key_id}"

        await checker.add_cookies(await context.cookies())
        probe = await checker.new_page()

        async def checked(path: str, shot: str) -> None:
            await probe.goto(system.gateway + path)
            html = await probe.content()
            for secret in secrets:
                assert secret not in html, path
            await screenshot(probe, shot)
            violations = await axe_violations(probe)
            assert violations == [], (path, violations)

        await checked(key_path, "key-filled")
        spike = probe.locator("section[aria-labelledby=anomalies] tbody tr", has_text=str(spike_day))
        assert "Spend spike" in await spike.inner_text()
        assert await probe.locator("text=No anomaly").count() == 0
        # The panic button's form, opened: its field, its warning and its confirmation are checked too.
        await probe.locator("details.disable-upstream summary").click()
        await probe.locator("#disable_reason").wait_for()
        await screenshot(probe, "key-disable-open")
        assert await axe_violations(probe) == []

        await checked("/insights/prices", "prices-filled")
        drifted = probe.locator("#prices tbody tr").filter(has=probe.get_by_role("cell", name="OpenAI", exact=True))
        assert await drifted.locator("th").inner_text() == "openai/gpt-4.1"
        assert await drifted.locator("td.drift-up strong", has_text="▲ up").count() == 1
        assert await probe.locator("#prices tbody tr").count() == 3  # Azure's and Anthropic's too, new here

        await checked("/insights/reconciliation", "reconciliation-filled")
        gap_days = await probe.locator("section[aria-labelledby=gaps-heading] tbody td:nth-child(2)").all_inner_texts()
        assert {str(d0), str(d1)} <= set(gap_days)

        await checked("/insights/hygiene", "hygiene-filled")
        no_limit = probe.locator("section[aria-labelledby=finding-no_limit] tbody tr", has_text=world["leaky"]["label"])
        assert await no_limit.locator("button", has_text="Apply suggested limit").count() == 1
        untracked = probe.locator("section[aria-labelledby=finding-untracked_in_account] tbody")
        assert "spare" in await untracked.inner_text()

        # By keyboard alone, on the page as served (its CSP honoured): Tab from the kill switch's button reaches
        # the summary, Enter opens it, Tab reaches the reason, Tab the confirmation, Enter sends it.
        await page.goto(system.gateway + key_path)
        details = page.locator("details.disable-upstream")
        assert await details.evaluate("d => d.open") is False
        await page.get_by_role("button", name="Save the kill switch").focus()
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.tagName") == "SUMMARY"
        await page.keyboard.press("Enter")
        assert await details.evaluate("d => d.open") is True
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "disable_reason"
        await page.keyboard.type(REASON)
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Yes, disable the key at OpenRouter now"
        # OpenRouter slowed on the key routes, so the worker's write is still in flight when the page comes back.
        await emulator.faults(latency_ms=6000, paths=["/keys"])
        await page.keyboard.press("Enter")
        await page.wait_for_url(system.gateway + key_path + "?done=disabled")
        assert await page.locator("main p[role=status]").inner_text() == (
            "Asked: the key is disabled at OpenRouter within moments; the changes below say when it is done."
        )
        assert await page.locator("[data-upstream=disabling]").inner_text() == (
            "A disable of this key at OpenRouter is under way."
        )
        assert await page.locator("details.disable-upstream").count() == 0  # not offered twice
        asked = page.locator("section[aria-labelledby=upstream] tbody tr", has_text=REASON)
        assert (await asked.locator("td").all_inner_texts())[1] == "disable"
        await screenshot(page, "key-disabling")
        await emulator.clear_faults()

        # Done: disabled at OpenRouter, the enable button offered instead; checked by axe too.
        await emulated(emulator, world["leaky"]["hash"], disabled=True)

        async def done() -> bool:
            view = await upstream(watcher, key_id)
            return bool(view["disabled"] and view["actions"][0]["status"] == "done")

        await wait_for(done, what="the disable done")
        await checked(key_path, "key-disabled")
        assert await probe.locator("[data-upstream=disabled]").count() == 1
        assert await probe.get_by_role("button", name="Enable at OpenRouter").count() == 1
    finally:
        await checker.close()
        await client.aclose()
    assert problems == [], problems
