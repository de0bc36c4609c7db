"""The web dashboard in a real browser (issue 14): Chromium through the gateway, against the whole system
and the OpenRouter emulator. Each page is screenshotted into test-output/screenshots/ and checked by axe.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from owr_web.views.format import usd
from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_account_email_journey import emailed_link
from tests.e2e.test_alerts_journey import Receiver, receiver
from tests.e2e.test_journey import PASSWORD
from tests.e2e.test_sync_journey import wait_for
from tests.support.browser import axe_violations, launched_browser, screenshot
from tests.support.mail import Inbox
from tools.devstack import Ports, ProcessGroup, ProcessSpec, system_specs

pytestmark = pytest.mark.e2e
# The alerts journey's webhook receiver (a fixture), on loopback: the worker delivers there in tests.
__all__ = ["receiver"]

PAGES = (
    "/",
    "/keys",
    "/stats",
    "/accounts",
    "/insights/hygiene",
    "/insights/prices",
    "/insights/reconciliation",
    "/budgets",
    "/channels",
    "/alerts",
    "/alerts/rules",
    "/team",
    "/workspaces",
    "/invite?token=owri_x",
    "/tokens",
    "/profile",
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    async for launched in launched_browser():
        yield launched


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser profile (no cookies), which honours the pages' CSP."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    await ctx.close()


def console_problems(page: Any) -> list[str]:
    """Errors the page logs (a CSP violation, a script error) as the test goes; a 4xx the test provokes on
    purpose (Chromium logs each as "Failed to load resource") is not one."""
    seen: list[str] = []
    expected = "Failed to load resource: the server responded with a status of 4"
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" and not m.text.startswith(expected) else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    return seen


async def register(page: Any, system: System) -> str:
    email = f"web.{secrets.token_hex(4)}@example.com"
    await page.goto(system.gateway + "/register")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("main button[type=submit]")
    await page.wait_for_url(system.gateway + "/")
    return email


async def api_headers(system: System, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"authorization": f"Bearer {r.json()['access_token']}"}


async def seeded_key(emulator: EmulatorAdmin) -> tuple[dict[str, Any], str]:
    """An emulator account with an inference key that spent today on two models; (key, today's cost)."""
    now = await emulator.set_clock(datetime.now(UTC))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # Early today but never ahead of the emulator's clock (a run just after 00:00 UTC had its events refused).
    spent_at = midnight + min(timedelta(minutes=30), (now - midnight) / 2)
    account = await emulator.account("50")
    key = await emulator.key(account, "inference", name="browser")
    events = []
    for model, provider, cost in (
        ("openai/gpt-4.1", "OpenAI", "0.125"),
        ("anthropic/claude-sonnet-4", "Anthropic", "0.375"),
    ):
        events.append(
            {
                "key_hash": key["hash"],
                "at": spent_at.isoformat(),
                "model": model,
                "model_permaslug": model,
                "provider_name": provider,
                "requests": 3,
                "prompt_tokens": 1000,
                "completion_tokens": 200,
                "reasoning_tokens": 0,
                "cost": cost,
                "byok_cost": "0",
            }
        )
    await emulator.events(events)
    return key, "0.5"


async def test_the_browser_journey(system: System, context: Any, emulator: EmulatorAdmin) -> None:
    page = await context.new_page()
    problems = console_problems(page)
    email = await register(page, system)
    assert await page.title() == "Dashboard · OpenRouter Watcher"
    assert await page.locator("text=Add your first key").count() == 1

    # Add a key: the secret never comes back, and the row turns from pending to valid without a reload.
    key, _ = await seeded_key(emulator)
    await page.goto(system.gateway + "/keys")
    await page.fill("#key-name", "browser key")
    await page.fill("#key-secret", key["key"])
    await page.click("#keys-section form[action='/keys'] button[type=submit]")
    row = page.locator("tr", has_text="browser key")
    await row.wait_for()
    assert key["key"] not in await page.content()
    await row.locator("[data-status='valid']").wait_for(timeout=45_000)
    # A refusal is shown where the person acted (htmx swaps the 409's section in), never silently dropped.
    await page.fill("#key-name", "the same again")
    await page.fill("#key-secret", key["key"])
    await page.click("#keys-section form[action='/keys'] button[type=submit]")
    await page.locator("[role=alert]", has_text="already stored").wait_for()
    assert key["key"] not in await page.content()
    await row.locator("button", has_text="Sync now").click()
    await page.locator("[role=status]", has_text="Sync requested.").wait_for()
    await screenshot(page, "keys")
    await row.get_by_role("link", name="browser key", exact=True).click()
    await page.locator("h1", has_text="browser key").wait_for()
    await screenshot(page, "key")

    # The dashboard draws the chart, and its figures are the API's.
    headers = await api_headers(system, email)
    today = datetime.now(UTC).date().isoformat()
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:

        async def spent() -> dict[str, Any] | None:
            r = await client.get("/api/v1/usage/summary", headers=headers, params={"from": today, "to": today})
            body: dict[str, Any] = r.json()
            return body if Decimal(str(body["totals"]["cost"])) > 0 else None

        summary = None
        for _ in range(60):
            summary = await spent()
            if summary:
                break
            await asyncio.sleep(0.5)
        assert summary is not None, "the key's first sync recorded no spend"
    await page.goto(system.gateway + "/")
    await page.locator("canvas[data-drawn='1']").wait_for()
    today_tile = page.locator(".tile", has_text="Today").locator(".figure")
    assert await today_tile.inner_text() == usd(Decimal(str(summary["totals"]["cost"])))
    await screenshot(page, "dashboard")

    # Stats: filter by key and day, then the CSV export streams the same rows.
    await page.goto(system.gateway + "/stats")
    await page.select_option("#key_id", label="browser key")
    await page.fill("#from", today)
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(re.compile(r".*key_id=.*"))
    rows = page.locator("#stats-rows tbody tr")
    assert await rows.count() >= 1, await page.locator("main").inner_text()
    key_id = await page.locator("#key_id").input_value()
    async with page.expect_download() as download_info:
        await page.click("text=CSV")
    download = await download_info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert len(exported) == await rows.count()
    assert {row["key_id"] for row in exported} == {key_id}
    assert {row["date"] for row in exported} == {today}
    await screenshot(page, "stats")

    await page.goto(system.gateway + "/accounts")
    await screenshot(page, "accounts")

    # A token: shown once, then listed by prefix only; revoked.
    await page.goto(system.gateway + "/tokens")
    await page.fill("#token-name", "browser token")
    await page.click("main form[action='/tokens'] button[type=submit]")
    value = await page.locator("#new-token").input_value()
    assert value.startswith("owr_")
    await screenshot(page, "tokens")
    await page.goto(system.gateway + "/tokens")
    assert value not in await page.content()
    await page.click("tr:has-text('browser token') button:has-text('Revoke')")
    await page.wait_for_url(system.gateway + "/tokens")
    assert await page.locator("tr", has_text="browser token").count() == 0

    # Change the password: every session ends; sign in again with the new one.
    await page.goto(system.gateway + "/profile")
    await screenshot(page, "profile")
    await page.fill("#current-password", PASSWORD)
    await page.fill("#new-password", PASSWORD + " changed")
    await page.click("form[action='/profile/password'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/login\?done=changed"))
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD + " changed")
    await page.click("main button[type=submit]")
    await page.wait_for_url(system.gateway + "/")

    # Sign out; going back shows no page of the account.
    await page.click("header button:has-text('Sign out')")
    await page.wait_for_url(re.compile(r".*/login\?done=signed_out$"))
    await page.go_back()
    await page.reload()
    assert "/login" in page.url
    assert problems == [], problems


async def test_the_insights_are_one_header_entry_with_tabs(system: System, context: Any) -> None:
    page = await context.new_page()
    problems = console_problems(page)
    await register(page, system)
    header = page.get_by_role("navigation", name="Main")
    for width in (1024, 1280):
        # Ten entries: one row on a laptop (fourteen wrapped).
        await page.set_viewport_size({"width": width, "height": 900})
        tops = await header.locator("li").evaluate_all("items => items.map(i => i.getBoundingClientRect().top)")
        assert len(tops) == 10
        assert len(set(tops)) == 1, (width, tops)
    await header.get_by_role("link", name="Insights").click()
    await page.wait_for_url(system.gateway + "/insights/hygiene")
    tabs = page.get_by_role("navigation", name="Insights")
    # By keyboard: the tab is a plain link.
    await tabs.get_by_role("link", name="Prices").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/insights/prices$"))
    assert await header.get_by_role("link", name="Insights").get_attribute("aria-current") == "page"
    assert await tabs.get_by_role("link", name="Prices").get_attribute("aria-current") == "page"
    assert await tabs.get_by_role("link", name="Hygiene").get_attribute("aria-current") is None
    await page.goto(system.gateway + "/insights")
    assert page.url == system.gateway + "/insights/hygiene"
    assert problems == [], problems


async def test_a_post_without_the_csrf_token_is_refused(system: System, context: Any) -> None:
    page = await context.new_page()
    await register(page, system)
    r = await context.request.post(system.gateway + "/keys", form={"name": "x", "key": "sk-or-v1-" + "a" * 64})
    assert r.status == 403
    r = await context.request.post(
        system.gateway + "/keys", form={"name": "x", "key": "sk-or-v1-" + "a" * 64, "csrf_token": "forged"}
    )
    assert r.status == 403
    anonymous = await context.browser.new_context()
    r = await anonymous.request.post(system.gateway + "/login", form={"email": "a@example.com", "password": "x" * 12})
    assert r.status == 403
    await anonymous.close()


async def test_an_ended_session_sends_the_person_to_sign_in(system: System, context: Any) -> None:
    page = await context.new_page()
    await register(page, system)
    redis = Redis.from_url(system.env["REDIS_URL"])
    try:
        async for name in redis.scan_iter("owr:web:session:*"):
            await redis.delete(name)
    finally:
        await redis.aclose()
    await page.goto(system.gateway + "/keys")
    assert page.url == system.gateway + "/login?next=/keys"


async def test_another_persons_key_is_a_404_page(system: System, context: Any, browser: Any) -> None:
    page = await context.new_page()
    email = await register(page, system)
    headers = await api_headers(system, email)
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        r = await client.post("/api/v1/keys", headers=headers, json={"name": "mine", "key": "sk-or-v1-" + "b1" * 32})
        assert r.status_code == 201, r.text
        key_id = r.json()["id"]
    other = await browser.new_context()
    try:
        stranger = await other.new_page()
        await register(stranger, system)
        response = await stranger.goto(system.gateway + f"/keys/{key_id}")
        assert response.status == 404
        assert await stranger.locator("h1").inner_text() == "Not Found"
    finally:
        await other.close()


async def test_every_page_is_accessible_and_carries_no_secret(
    system: System, browser: Any, emulator: EmulatorAdmin
) -> None:
    # axe is injected as a script of its own: this context alone bypasses the pages' CSP.
    ctx = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    try:
        page = await ctx.new_page()
        await register(page, system)
        key, _ = await seeded_key(emulator)
        await page.goto(system.gateway + "/keys")
        await page.fill("#key-name", "checked key")
        await page.fill("#key-secret", key["key"])
        await page.click("#keys-section form[action='/keys'] button[type=submit]")
        await page.locator("tr", has_text="checked key").wait_for()
        key_page = (
            await page.locator("tr", has_text="checked key")
            .get_by_role("link", name="checked key", exact=True)
            .get_attribute("href")
        )
        assert key_page is not None
        session_cookie = next(c["value"] for c in await ctx.cookies() if c["name"].endswith("owr_session"))
        # The signed-in pages carry the verification banner (this person has not verified yet).
        anonymous = (
            "/login",
            "/register",
            "/forgot-password",
            "/reset-password?token=owrp_x",
            "/verify-email?token=owrv_x",
            "/verify-email?sent=1",
            "/confirm-email-channel?token=owrc_x",
        )
        for path in (*PAGES, key_page, *anonymous):
            if path in anonymous:
                await ctx.clear_cookies()
            await page.goto(system.gateway + path)
            html = await page.content()
            for secret in (key["key"], key["key"][9:], session_cookie):
                assert secret not in html, path
            if path == key_page:
                assert "No anomaly" in html  # the key page's anomalies section, in its empty state
            violations = await axe_violations(page)
            assert violations == [], (path, violations)
    finally:
        await ctx.close()


async def test_the_demo_signs_a_newcomer_in_at_once(system: System, context: Any) -> None:
    """`make demo`'s web (WEB_DEMO_EMAIL/PASSWORD): opening the dashboard shows the demo user's figures with
    no step of the visitor's own; after signing out, the sign-in form stays (no sign-in loop)."""
    page = await context.new_page()
    email = await register(page, system)
    ports = Ports.free()
    spec = next(s for s in system_specs(system.ports) if s.name == "web")
    demo = ProcessSpec(
        "web-demo",
        spec.module,
        ports.web_admin,
        {
            **spec.env,
            "WEB_PORT": str(ports.web),
            "WEB_ADMIN_PORT": str(ports.web_admin),
            "WEB_DEMO_EMAIL": email,
            "WEB_DEMO_PASSWORD": PASSWORD,
        },
    )
    group = ProcessGroup(system.env, log_dir=system.log_dir)
    try:
        group.start(demo)
        group.wait_ready(timeout=30)
        visitor = await context.browser.new_context()
        try:
            newcomer = await visitor.new_page()
            await newcomer.goto(f"http://127.0.0.1:{ports.web}/")
            assert newcomer.url == f"http://127.0.0.1:{ports.web}/"
            assert await newcomer.locator(".who").inner_text() == email
            await newcomer.click("header button:has-text('Sign out')")
            await newcomer.wait_for_url(re.compile(r".*/login\?done=signed_out$"))
            assert await newcomer.locator("#password").count() == 1
        finally:
            await visitor.close()
    finally:
        group.stop()


async def reload_until(page: Any, selector: str, *, seconds: float = 60, what: str = "") -> None:
    """Reload the page until `selector` matches (the worker delivers in the background)."""

    async def shown() -> bool:
        await page.reload()
        return bool(await page.locator(selector).count())

    await wait_for(shown, seconds=seconds, what=what or selector)


async def test_budgets_channels_and_alerts(
    system: System, context: Any, browser: Any, emulator: EmulatorAdmin, receiver: Receiver, mail_inbox: Inbox
) -> None:
    """Issue 15's pages: a webhook channel (its secret once), a test through the worker to a receiver that fails
    once (the delivery log shows both attempts), a budget on a key with its bar, the alert history, the rules.
    Channels wait for a verified address: the emailed link's button verifies it, and the page offers them at once."""
    receiver.failures = 1
    page = await context.new_page()
    problems = console_problems(page)
    email = await register(page, system)
    key, _ = await seeded_key(emulator)
    headers = await api_headers(system, email)
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        r = await client.post("/api/v1/keys", headers=headers, json={"name": "agent", "key": key["key"]})
        assert r.status_code == 201, r.text

    # Unverified: the channels page says why it offers no channel, until the emailed link's button is pressed.
    await page.goto(system.gateway + "/channels")
    assert await page.locator("[data-unverified]").count() == 1
    assert await page.locator("main form[action='/channels']").count() == 0
    await screenshot(page, "channels-unverified")
    link, token = await emailed_link(mail_inbox, email, "Verify your email address")
    await page.goto(system.gateway + urlsplit(link).path + "?token=" + token)
    await page.click("main form[action='/verify-email'] button[type=submit]")
    await page.locator("[role=status]", has_text="Your email address is verified").wait_for()

    # A webhook channel: the signing secret once, gone on reload; the URL is never shown back.
    await page.goto(system.gateway + "/channels")
    assert await page.locator("[data-unverified]").count() == 0
    assert await page.locator("text=No channel yet.").count() == 1
    await page.select_option("#type", "webhook")
    await page.fill("#name", "ops hook")
    await page.fill("#url", receiver.url)
    await page.click("main form[action='/channels'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/channels/[0-9a-f-]+\?done=created$"))
    channel_url = page.url.split("?")[0]
    secret = await page.locator("#channel-secret").input_value()
    assert secret.startswith("whsec_")
    assert receiver.url not in await page.content()
    await screenshot(page, "channel-secret")
    await page.goto(channel_url)
    assert secret not in await page.content()
    assert await page.locator("#secret-panel").count() == 0

    # A test goes through the worker: the first attempt is refused (500), the retry lands; both are logged.
    await page.click("main form[action$='/test'] button[type=submit]")
    await page.locator("[role=status]", has_text="Test event queued").wait_for()
    # usage queues the worker's run at once; the retry after the 500 waits its backoff (1 s here) and the poll.
    await reload_until(page, "table.deliveries td:has-text('delivered')", what="the test's delivery")
    log = page.locator("table.deliveries tbody tr")
    assert await log.count() == 2
    assert "HTTP 500" in await log.nth(1).inner_text()
    assert await page.locator("table.deliveries button:has-text('Retry')").count() == 0
    (delivered,) = receiver.accepted(secret)  # signed with the secret the page showed
    assert delivered[1]["type"] == "test"
    await screenshot(page, "channel")
    await page.goto(system.gateway + "/channels")
    await page.locator("tr", has_text="ops hook").locator("text=Enabled").wait_for()
    await screenshot(page, "channels")

    # A weekly budget on the key, sent to the channel: its bar, state and reset are shown.
    await page.goto(system.gateway + "/budgets")
    await page.fill("#name", "agent weekly")
    await page.select_option("#scope_type", "key")
    option = await page.locator("#key_id option", has_text="agent (").get_attribute("value")
    assert option is not None
    await page.select_option("#key_id", option)
    await page.fill("#amount_usd", "10")
    await page.select_option("#period", "weekly")
    await page.check("input[name=channel_ids]")
    await page.click("main form[action='/budgets'] button[type=submit]")
    await page.wait_for_url(system.gateway + "/budgets?done=created")
    row = page.locator("tr", has_text="agent weekly")
    assert await row.locator("progress.bar").count() == 1
    assert "Key “agent”" in await row.inner_text()
    assert re.search(r"resets Mon 00:00 UTC", await row.inner_text())
    # A refusal comes back at its field, with what was typed.
    await page.fill("#name", "broken")
    await page.fill("#amount_usd", "-5")
    await page.click("main form[action='/budgets'] button[type=submit]")
    await page.locator("#amount_usd-error").wait_for()
    assert await page.locator("#name").input_value() == "broken"
    await page.goto(system.gateway + "/budgets")
    await screenshot(page, "budgets")

    # The alert history: the test event, delivered to the channel.
    await page.goto(system.gateway + "/alerts")
    event = page.locator("tr[data-event-type='test']")
    assert "A test event for the channel “ops hook”" in await event.inner_text()
    assert "ops hook: delivered" in await event.inner_text()
    await screenshot(page, "alerts")

    # The rules: switch one off and change a parameter; the API keeps both.
    await page.goto(system.gateway + "/alerts/rules")
    await page.uncheck("input[name='enabled.key.expiring']")
    await page.fill("input[name='param.key.expiring.days']", "14")
    await page.click("main form[action='/alerts/rules'] button[type=submit]")
    await page.locator("[role=status]", has_text="Alert rules saved.").wait_for()
    assert not await page.locator("input[name='enabled.key.expiring']").is_checked()
    assert await page.locator("input[name='param.key.expiring.days']").input_value() == "14"
    await screenshot(page, "alert-rules")
    assert problems == [], problems

    # axe on each new page as filled (a context of its own bypasses the CSP to inject axe); no secret anywhere.
    checker = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    try:
        await checker.add_cookies(await context.cookies())
        probe = await checker.new_page()
        for path in (
            "/",
            "/budgets",
            "/channels",
            channel_url.removeprefix(system.gateway),
            "/alerts",
            "/alerts/rules",
        ):
            await probe.goto(system.gateway + path)
            html = await probe.content()
            assert secret not in html, path
            assert receiver.url not in html, path
            violations = await axe_violations(probe)
            assert violations == [], (path, violations)
    finally:
        await checker.close()
