"""What the security page shows: the setup (QR code, the secret for typing in), and each session's device.

The QR code is the API's SVG shown as an `<img>` from a `data:` URL (the pages' CSP allows `img-src data:`),
never inlined into the page: an SVG loaded as an image runs no script and fetches nothing, whatever it holds.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

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


@dataclass(frozen=True, slots=True)
class Setup:
    """A started setup, as the page shows it once."""

    qr_src: str
    secret_groups: str


def device(user_agent: str | None) -> str:
    """ "Firefox on Linux", "curl", or "Unknown device"."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Other client"


def setup_view(answer: dict[str, Any]) -> Setup:
    """The QR code as a `data:` image URL, and the secret in groups of four for typing into an app."""
    svg = str(answer["qr_svg"])
    if not svg.startswith("<svg"):
        raise ValueError("the QR code is not an SVG document")
    query = parse_qs(urlsplit(str(answer["otpauth_uri"])).query)
    secret = re.sub(r"[^A-Z2-7]", "", (query.get("secret") or [""])[0].upper())
    groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return Setup(qr_src="data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode(), secret_groups=groups)
