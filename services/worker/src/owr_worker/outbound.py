"""Requests to URLs people give us (webhooks, Slack, Discord), safe against server-side request forgery.

The host is resolved once and every address it has is checked; the connection then goes to those checked
addresses only (a resolver pinned to them, so a second DNS answer cannot swap in an internal one), with no
redirect followed. In production only `https` to public addresses passes: loopback, private, link-local,
CGNAT, unique-local, site-local, multicast, reserved, unspecified, IPv4-mapped IPv6 and the 6to4 form of a
non-public IPv4 address are refused, unless the host is
on `WORKER_OUTBOUND_ALLOW_HOSTS`. With `OWR_ENV=development` or `test`, `http` and loopback are allowed too,
so tests and the demo can run local receivers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from owr_worker.settings import WorkerSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# What an answer's body is read to, at most: a status line for the delivery log, never a whole page.
BODY_LIMIT = 2048


class OutboundRefused(Exception):
    """The URL may not be called; `reason` names why (safe to store and show: no address, no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OutboundAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def refused_class(address: IPAddress) -> str | None:
    """Why an address is not public (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        # 6to4 (2002::/16) carries an IPv4 address a relay would reach: it is as public as that address.
        if address.sixtofour is not None and refused_class(address.sixtofour) is not None:
            return "a 6to4 address of a non-public IPv4 address"
        if address.is_site_local:
            return "site-local"
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("carrier-grade NAT", isinstance(address, ipaddress.IPv4Address) and address in CGNAT),
        ("reserved", address.is_reserved),
        ("private", address.is_private),  # RFC 1918, unique-local fc00::/7, and the other non-global ranges
    )
    return next((name for name, hit in checks if hit), None)


class _Pinned(AbstractResolver):
    """Answers with the addresses already checked, whatever the host: the connection cannot go elsewhere."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress]) -> None:
        self._results: list[ResolveResult] = [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        return self._results

    async def close(self) -> None:
        return None


class Outbound:
    """`await outbound.post(url, body, headers)`: one checked, pinned, redirect-free request."""

    def __init__(self, settings: WorkerSettings) -> None:
        self._production = settings.is_production
        self._allowed = frozenset(settings.outbound_allow_hosts)
        self._timeout = aiohttp.ClientTimeout(total=settings.outbound_timeout_seconds)

    async def target(self, url: str) -> tuple[str, int, list[IPAddress]]:
        """The URL's host, port and checked addresses; `OutboundRefused` otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise OutboundRefused("the URL must be an https:// address")
        if parts.username or parts.password:
            raise OutboundRefused("the URL may not carry a user name or password")
        if parts.scheme == "http" and self._production:
            raise OutboundRefused("the URL must use https")
        host = parts.hostname.lower().rstrip(".")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise OutboundRefused("the URL's port is not valid") from None
        addresses = await self._resolve(host, port)
        if host not in self._allowed:
            for address in addresses:
                why = refused_class(address)
                if why == "loopback" and not self._production:
                    continue
                if why is not None:
                    raise OutboundRefused(f"the host resolves to a {why} address, which is never called")
        return host, port, addresses

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=self._timeout.total
            )
        except (OSError, TimeoutError):
            raise OutboundRefused("the host name does not resolve") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        if not addresses:
            raise OutboundRefused("the host name does not resolve")
        return addresses

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> OutboundAnswer:
        """POST `body`; the answer's status, headers and at most `BODY_LIMIT` bytes. Transport failures raise
        `aiohttp.ClientError` or `TimeoutError` (the caller retries); a refused target `OutboundRefused`."""
        host, port, addresses = await self.target(url)
        connector = aiohttp.TCPConnector(resolver=_Pinned(host, port, addresses), use_dns_cache=False, limit=1)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            data = await response.content.read(BODY_LIMIT)
            return OutboundAnswer(response.status, dict(response.headers), data)


def describe(exc: BaseException) -> str:
    """A delivery failure in a few words, for the log (never the URL: a Slack URL is a credential)."""
    if isinstance(exc, OutboundRefused):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    kind: Any = type(exc).__name__
    return f"connection failed ({kind})"
