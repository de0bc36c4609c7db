"""Browser tests: Playwright driving Debian's Chromium (headless), axe-core from npm, page screenshots.

Without Chromium the browser tests skip with one line saying how to get it; with `OWR_REQUIRE_BROWSER=1`
(`.ci/run` sets it) they fail instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "services" / "web" / "node_modules" / "axe-core" / "axe.min.js"
# Where the suite leaves a PNG of each page it visits (the README's screenshot comes from here).
SCREENSHOTS = ROOT / "test-output" / "screenshots"
GET_CHROMIUM = "browser tests need Chromium: `sudo apt-get install chromium` (Debian/Ubuntu), or set OWR_CHROMIUM"


def chromium_path() -> str | None:
    return os.environ.get("OWR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("OWR_REQUIRE_BROWSER") == "1":
            pytest.fail(GET_CHROMIUM)
        pytest.skip(GET_CHROMIUM)
    return path


async def launched_browser() -> AsyncIterator[Any]:
    """The body of a session-scoped `browser` fixture: headless Chromium, closed at the end."""
    from playwright.async_api import async_playwright

    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (needs a context that bypasses
    the page's CSP: axe is injected as a script of its own)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make install` (it installs the web app's npm packages)")
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
