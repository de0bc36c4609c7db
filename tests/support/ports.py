"""Loopback ports for the servers tests start (one implementation, in tools.devinfra, shared with devstack)."""

from __future__ import annotations

from operator import attrgetter
from typing import overload

from tools.devinfra import free_port, wait_for_port

__all__ = ["LoopbackUrl", "closed_port", "free_port", "wait_for_port"]


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released), for refused-connection tests."""
    return free_port()


class LoopbackUrl:
    """`url = LoopbackUrl("admin_port")` on a class: `http://127.0.0.1:<that port of the instance>`.

    The port may be a dotted path (`"ports.gateway"`).
    """

    def __init__(self, port: str) -> None:
        self._port = attrgetter(port)

    @overload
    def __get__(self, instance: None, owner: type) -> LoopbackUrl: ...
    @overload
    def __get__(self, instance: object, owner: type) -> str: ...
    def __get__(self, instance: object | None, owner: type) -> LoopbackUrl | str:
        if instance is None:
            return self
        return f"http://127.0.0.1:{self._port(instance)}"
