"""An alert's words (`alert_text.AlertText`) in each channel's format: plain text and HTML for email, Slack's and
Discord's incoming-webhook bodies.

Everything that came from `data` is escaped for the format it lands in: HTML-escaped in email, `& < >` in
Slack (so a key named `<!channel>` pings no one and forges no link), Markdown in Discord, where mentions are
switched off as well (`allowed_mentions`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from owr_worker.alert_values import AlertText, Section, clean

PRODUCT = "OpenRouter Watcher"
DISCORD_MAX = 2000
_DISCORD_MARKUP = re.compile(r"([\\*_~`|>\[\]#:<-])")


def footer(channel_name: str) -> str:
    return f"Sent by {PRODUCT} to the channel '{clean(channel_name)}'. Choose what it receives on the Channels page."


def email_subject(words: AlertText) -> str:
    return f"[{PRODUCT}] {words.subject}"


def plain(words: AlertText, *, channel_name: str) -> str:
    parts = [words.subject]
    for block in words.blocks:
        if isinstance(block, Section):
            parts.append(block.title + ":\n" + "\n".join(f"  - {item}" for item in block.items))
        else:
            parts.append(block)
    parts.append("-- \n" + footer(channel_name))
    return "\n\n".join(parts) + "\n"


def html_body(words: AlertText, *, channel_name: str) -> str:
    e = html.escape
    parts = [f'<h2 style="font-size:18px;margin:0 0 12px">{e(words.subject)}</h2>']
    for block in words.blocks:
        if isinstance(block, Section):
            items = "".join(f"<li>{e(item)}</li>" for item in block.items)
            parts.append(f'<h3 style="font-size:15px;margin:16px 0 4px">{e(block.title)}</h3><ul>{items}</ul>')
        else:
            parts.append(f"<p>{e(block)}</p>")
    parts.append(f'<p style="color:#666;font-size:12px;margin-top:24px">{e(footer(channel_name))}</p>')
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(words.subject)}</title></head>\n"
        f'<body style="font-family:system-ui,sans-serif;line-height:1.45;color:#1a1a1a">\n{body}\n</body></html>\n'
    )


def _chat_lines(words: AlertText, escape: Callable[[str], str], bold: str) -> list[str]:
    """The lines of a chat message: `bold` marks the subject and the section titles, `escape` every text."""
    lines = [f"{bold}{escape(words.subject)}{bold}"]
    for block in words.blocks:
        if isinstance(block, Section):
            lines.append(f"{bold}{escape(block.title)}{bold}")
            lines += [f"• {escape(item)}" for item in block.items]
        else:
            lines.append(escape(block))
    return lines


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(words: AlertText) -> dict[str, Any]:
    """An incoming webhook's body: `text` in Slack's mrkdwn."""
    return {"text": "\n".join(_chat_lines(words, _slack_escape, "*"))}


def _discord_escape(value: str) -> str:
    return _DISCORD_MARKUP.sub(r"\\\1", value)


def discord(words: AlertText) -> dict[str, Any]:
    """An incoming webhook's body: `content` in Discord's Markdown, at most 2000 characters, no mentions."""
    lines = _chat_lines(words, _discord_escape, "**")
    content = "\n".join(lines)
    if len(content) > DISCORD_MAX:
        # Whole lines only, so no escape is cut in half.
        kept: list[str] = []
        for line in lines:
            if len("\n".join([*kept, line])) > DISCORD_MAX - 2:
                break
            kept.append(line)
        content = "\n".join(kept) + "\n…"
    return {"content": content, "allowed_mentions": {"parse": []}}
