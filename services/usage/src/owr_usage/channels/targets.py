"""Where a channel sends: which URLs and addresses each type takes, and the hint a view may show of them.

A Slack or Discord webhook URL is itself a credential, and so may be a webhook's (a token in its path or
query): no message here ever echoes one. The shape is checked when the body is parsed (`url_shape`,
`canonical_email`); what this deployment admits (`check_url`: `http` only in development and test, Slack and
Discord on their own hosts) when the service stores it. Whether the address is public is the worker's call at
send time (resolve and pin, `WORKER_OUTBOUND_ALLOW_HOSTS`): a refused address is a failed attempt in the log.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import SplitResult, urlsplit

from email_validator import EmailNotValidError, validate_email

from owr_usage.channels.errors import InvalidChannelTarget

URL_MAX = 2048
EMAIL_MAX = 254
SLACK_HOSTS = frozenset({"hooks.slack.com"})
SLACK_PATH = "/services/"
DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"})
DISCORD_PATH = "/api/webhooks/"
# Outside production a Slack or Discord channel may point at a local stand-in (the demo's and the tests' receivers).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError("must be an absolute http(s) URL") from None
    return parts


def url_shape(url: str) -> str:
    """An absolute `http`/`https` URL with a host and no credentials before it; ValueError (no echo) otherwise."""
    if len(url) > URL_MAX:
        raise ValueError(f"must be at most {URL_MAX} characters")
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs") for ch in url):
        raise ValueError("must not contain spaces or control characters")
    parts = _split(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials before the host")
    return url


def check_url(channel_type: str, url: str, *, production: bool) -> None:
    """`InvalidChannelTarget` unless this deployment takes `url` for a channel of `channel_type`."""
    parts = _split(url)
    host = (parts.hostname or "").lower()
    local = not production and host in LOOPBACK_HOSTS
    if parts.scheme.lower() != "https" and production:
        raise InvalidChannelTarget("url", "must be an https URL")
    if channel_type == "slack" and not local and (host not in SLACK_HOSTS or not parts.path.startswith(SLACK_PATH)):
        raise InvalidChannelTarget("url", "must be a Slack incoming-webhook URL (https://hooks.slack.com/services/...)")
    if (
        channel_type == "discord"
        and not local
        and (host not in DISCORD_HOSTS or not parts.path.startswith(DISCORD_PATH))
    ):
        raise InvalidChannelTarget("url", "must be a Discord webhook URL (https://discord.com/api/webhooks/...)")


def url_hint(url: str) -> str:
    """The scheme and host (and an explicit port): never the path or query, which may hold the credential."""
    parts = _split(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        shown += f":{parts.port}"
    return f"{parts.scheme.lower()}://{shown}"


def canonical_email(raw: str) -> str:
    """The address lowercased and normalised; ValueError (no echo) when it is not one."""
    normalized = unicodedata.normalize("NFKC", raw.strip()).lower()
    try:
        result = validate_email(normalized, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("must be an email address") from None
    canonical = result.normalized.lower()
    if len(canonical) > EMAIL_MAX:
        raise ValueError(f"must be at most {EMAIL_MAX} characters")
    return canonical


def email_hint(address: str) -> str:
    """The first character of the local part and the domain: `a***@example.com`."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
