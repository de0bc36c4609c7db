"""What the security page shows of a setup: the QR code and the secret for typing in (each session's device is
`owr_shared.user_agents.device`).

The QR code is the API's SVG shown as an `<img>` from a `data:` URL (the pages' CSP allows `img-src data:`),
never inlined into the page: an SVG loaded as an image runs no script and fetches nothing, whatever it holds.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class Setup:
    """A started setup, as the page shows it once."""

    qr_src: str
    secret_groups: str


def setup_view(answer: dict[str, Any]) -> Setup:
    """The QR code as a `data:` image URL, and the secret in groups of four for typing into an app."""
    svg = str(answer["qr_svg"])
    if not svg.startswith("<svg"):
        raise ValueError("the QR code is not an SVG document")
    query = parse_qs(urlsplit(str(answer["otpauth_uri"])).query)
    secret = re.sub(r"[^A-Z2-7]", "", (query.get("secret") or [""])[0].upper())
    groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return Setup(qr_src="data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode(), secret_groups=groups)
