"""The header's navigation: one entry per section, the insights and the person's settings grouped, each grouped
page marking its entry current and showing tabs between the section's pages; `/insights` leads to the first."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from owr_web.views.nav import NAV, section_of
from tests.web.conftest import WORKSPACE_ID, Browser

HEADER = [
    ("/", "Dashboard"),
    ("/keys", "Keys"),
    ("/stats", "Stats"),
    ("/accounts", "Accounts"),
    ("/insights/hygiene", "Insights"),
    ("/budgets", "Budgets"),
    ("/alerts", "Alerts"),
    ("/channels", "Channels"),
    ("/team", "Team"),
    ("/profile", "Settings"),
]
INSIGHTS = [
    ("/insights/hygiene", "Hygiene"),
    ("/insights/prices", "Prices"),
    ("/insights/reconciliation", "Reconciliation"),
]
SETTINGS = [("/profile", "Profile"), ("/security", "Security"), ("/tokens", "API tokens")]


class Navs(HTMLParser):
    """Each `<nav>`'s links by its `aria-label`: `(href, words, aria-current)`."""

    def __init__(self) -> None:
        super().__init__()
        self.navs: dict[str, list[tuple[str, str, str | None]]] = {}
        self._nav: str | None = None
        self._link: tuple[str, str | None] | None = None
        self._words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "nav":
            self._nav = found.get("aria-label") or ""
            assert self._nav not in self.navs, f"two navs labelled {self._nav!r}"
            self.navs[self._nav] = []
        elif tag == "a" and self._nav is not None:
            self._link, self._words = (found.get("href") or "", found.get("aria-current")), []

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._words.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._nav is not None and self._link is not None:
            href, current = self._link
            self.navs[self._nav].append((href, " ".join("".join(self._words).split()), current))
            self._link = None
        elif tag == "nav":
            self._nav = None


def navs(html: str) -> dict[str, list[tuple[str, str, str | None]]]:
    parser = Navs()
    parser.feed(html)
    return parser.navs


def current(links: list[tuple[str, str, str | None]]) -> list[str]:
    return [words for _, words, marked in links if marked == "page"]


def answer_every_grouped_page(web: Browser) -> None:
    """What the API answers each insights and settings page: enough to render it."""
    empty = {"items": [], "total": 0, "page": 1, "per_page": 50}
    period = {"first_day": "2026-11-21", "last_day": "2026-12-04"}
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": []})
    web.gateway.answer("GET", "/api/v1/insights/reconciliation", {**empty, **period})
    previous = {"previous_first_day": "2026-11-07", "previous_last_day": "2026-11-20"}
    web.gateway.answer("GET", "/api/v1/insights/prices", {**empty, **period, **previous})
    web.gateway.page("/api/v1/keys", [])
    workspace = {"id": WORKSPACE_ID, "name": "Pat's", "role": "owner"}
    me = {
        "email": "pat@example.com",
        "email_verified": True,
        "workspace": workspace,
        "created_at": "2026-11-01T00:00:00Z",
    }
    web.gateway.answer("GET", "/api/v1/auth/me", me)
    mfa = {"enabled": False, "pending": False, "enabled_at": None, "recovery_codes_left": 0}
    web.gateway.answer("GET", "/api/v1/auth/2fa", mfa)
    web.gateway.page("/api/v1/auth/sessions", [])
    web.gateway.page("/api/v1/tokens", [])


async def test_the_header_has_one_entry_per_section(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": []})
    web.gateway.answer("GET", "/api/v1/insights/reconciliation", {"items": [], "total": 0, "page": 1, "per_page": 50})
    page = navs((await web.get("/insights/hygiene")).text)
    assert [(href, words) for href, words, _ in page["Main"]] == HEADER
    # The grouped pages are reached through their section's tabs, not from the header.
    header = {href for href, _, _ in page["Main"]}
    assert not header & {"/insights/prices", "/insights/reconciliation", "/security", "/tokens"}


@pytest.mark.parametrize(("section", "tabs"), [("Insights", INSIGHTS), ("Settings", SETTINGS)])
@pytest.mark.parametrize("index", [0, 1, 2])
async def test_every_grouped_page_marks_its_entry_and_shows_its_tabs(
    web: Browser, section: str, tabs: list[tuple[str, str]], index: int
) -> None:
    answer_every_grouped_page(web)
    path, tab = tabs[index]
    r = await web.get(path)
    assert r.status_code == 200, r.text
    page = navs(r.text)
    assert current(page["Main"]) == [section]
    assert [(href, words) for href, words, _ in page[section]] == tabs
    assert current(page[section]) == [tab]
    assert set(page) == {"Main", section}


async def test_a_page_of_its_own_has_no_tabs(web: Browser) -> None:
    for listed in ("/api/v1/budgets", "/api/v1/keys", "/api/v1/channels"):
        web.gateway.page(listed, [])
    r = await web.get("/budgets")
    assert r.status_code == 200, r.text
    page = navs(r.text)
    assert current(page["Main"]) == ["Budgets"]
    assert set(page) == {"Main"}


async def test_insights_leads_to_the_first_insights_page(web: Browser) -> None:
    r = await web.get("/insights")
    assert r.status_code == 303
    assert r.headers["location"] == "/insights/hygiene"


@pytest.mark.parametrize(
    ("path", "entry"),
    [
        ("/", "Dashboard"),
        ("/keys", "Keys"),
        ("/keys/0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001", "Keys"),
        ("/alerts/rules", "Alerts"),
        ("/channels/0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001", "Channels"),
        ("/insights/reconciliation", "Insights"),
        ("/tokens", "Settings"),
        ("/workspaces", None),
        ("/keysmith", None),
        ("/login", None),
    ],
)
def test_a_path_belongs_to_the_entry_it_sits_under(path: str, entry: str | None) -> None:
    section = section_of(path)
    assert (section.label if section else None) == entry


def test_no_page_is_in_two_sections() -> None:
    paths = [href for section in NAV for href, _ in section.pages]
    assert len(paths) == len(set(paths))
