"""Who the client is: the socket peer, or what a trusted proxy in front of us says it is."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


class TrustedProxies:
    """Addresses (or networks) whose `X-Forwarded-For` is believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        networks = [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries]
        # Exact addresses are a set lookup; only real networks need parsing per request.
        self._exact = frozenset(str(n.network_address) for n in networks if n.num_addresses == 1)
        self._networks = [n for n in networks if n.num_addresses > 1]

    def __bool__(self) -> bool:
        return bool(self._exact or self._networks)

    def __contains__(self, address: str) -> bool:
        if address in self._exact:
            return True
        if not self._networks:
            return False
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._networks)


def rate_subject(address: str) -> str:
    """The bucket of an address for per-client limits: IPv6 by /64 (one subscriber's usual allocation,
    so rotating through it buys nothing), an IPv4-mapped IPv6 address as its IPv4 one, IPv4 as is."""
    if ":" not in address:
        return address
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def resolve_client_ip(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The right-most untrusted `X-Forwarded-For` entry when `peer` is trusted, else `peer`.

    Walking from the right stops at the first hop we cannot vouch for: everything to its left was
    written by whoever controls that hop, i.e. possibly the client itself.
    """
    if not forwarded_for or not trusted or peer not in trusted:
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _valid_ip(entry.strip())
        if address is None:
            return client  # garbage: keep the last hop we trust, never the garbage
        client = address
        if address not in trusted:
            return address
    return client


def client_address(
    peer_info: tuple[str, int] | None, forwarded_for: bytes | None, trusted: TrustedProxies
) -> tuple[str, bool]:
    """The client's address for this connection, and whether its peer is a trusted proxy."""
    peer = peer_info[0] if peer_info else "unknown"
    trusted_peer = bool(trusted) and peer in trusted
    if trusted_peer and forwarded_for:
        return resolve_client_ip(peer, forwarded_for.decode("latin-1"), trusted), True
    return peer, trusted_peer
