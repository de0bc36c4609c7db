"""A User-Agent in a few words ("Firefox on Linux"): what auth's emails and web's session list call a device.

Only names from the tables below come out, never the header's own text: a client chooses its User-Agent, and
its words must not reach an email or a page as if auth had written them.
"""

from __future__ import annotations

# Browser and system names by the product tokens of a User-Agent; the first match wins, so Edge and Opera
# (which also say Chrome and Safari) come before Chrome, and Chrome before Safari.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "Python (httpx)"),
    ("python-requests/", "Python (requests)"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device(user_agent: str | None) -> str:
    """ "Firefox on Linux", "curl", or "Unknown device"."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Other client"
