"""The one email an unconfirmed email channel gets (double opt-in): a `channel.confirmation` with its link.

usage mints the link's one-time token when the delivery is claimed and hands it over in `confirmation_url`; it
is in this email and nowhere else (not in the event's data, a log line or a repr). The link opens the web app's
page, whose button confirms (a link scanner's GET spends nothing).
"""

from __future__ import annotations

import html

from owr_worker.alert_formats import PRODUCT

EVENT_TYPE = "channel.confirmation"
SUBJECT = f"[{PRODUCT}] Confirm that this address should receive alerts"
LINK_DAYS = 7


# No text the channel's creator chose (its name) appears: this email goes to an address nobody confirmed yet, and
# must not carry a stranger's words as if we wrote them.
_INTRO = (
    f"Someone added this address to {PRODUCT} as an alert channel. It gets no alerts until you confirm that it should."
)


def _lines() -> tuple[str, str, str]:
    return (
        _INTRO,
        f"To confirm, open the link below and press the button on the page (the link works once, for {LINK_DAYS} "
        "days):",
        "If you did not expect this email, ignore it: this address will be sent nothing else.",
    )


def plain(link: str) -> str:
    intro, how, otherwise = _lines()
    return f"{intro}\n\n{how}\n\n{link}\n\n{otherwise}\n"


def html_body(link: str) -> str:
    e = html.escape
    intro, how, otherwise = _lines()
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(SUBJECT)}</title></head>\n"
        '<body style="font-family:system-ui,sans-serif;line-height:1.45;color:#1a1a1a">\n'
        f"<p>{e(intro)}</p>\n<p>{e(how)}</p>\n"
        f'<p><a href="{e(link, quote=True)}">Confirm this address</a></p>\n'
        f'<p style="color:#666;font-size:12px;margin-top:24px">{e(otherwise)}</p>\n</body></html>\n'
    )
