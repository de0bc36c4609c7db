"""The header's navigation: one entry per section; a section of several pages shows tabs between them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """A header entry: its label and its pages as `(path, tab label)`; the entry links to the first page and is
    current on every page under any of them (`/keys/{id}` belongs to `/keys`)."""

    label: str
    pages: tuple[tuple[str, str], ...]

    @property
    def href(self) -> str:
        return self.pages[0][0]

    def owns(self, path: str) -> bool:
        return any(path == href or (href != "/" and path.startswith(href + "/")) for href, _ in self.pages)


def single(href: str, label: str) -> Section:
    return Section(label, ((href, label),))


# Fourteen links wrapped on a laptop's width: the insights and the person's own settings are one entry each.
NAV = (
    single("/", "Dashboard"),
    single("/keys", "Keys"),
    single("/stats", "Stats"),
    single("/accounts", "Accounts"),
    Section(
        "Insights",
        (
            ("/insights/hygiene", "Hygiene"),
            ("/insights/prices", "Prices"),
            ("/insights/reconciliation", "Reconciliation"),
        ),
    ),
    single("/budgets", "Budgets"),
    single("/alerts", "Alerts"),
    single("/channels", "Channels"),
    single("/team", "Team"),
    Section("Settings", (("/profile", "Profile"), ("/security", "Security"), ("/tokens", "API tokens"))),
)


def section_of(path: str) -> Section | None:
    """The entry a page marks current, or None (sign-in pages, `/workspaces`)."""
    return next((section for section in NAV if section.owns(path)), None)
