"""Loopback ports for the servers tests start (one implementation, in tools.devinfra, shared with devstack)."""

from __future__ import annotations

from tools.devinfra import free_port, wait_for_port

__all__ = ["closed_port", "free_port", "wait_for_port"]


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released), for refused-connection tests."""
    return free_port()
