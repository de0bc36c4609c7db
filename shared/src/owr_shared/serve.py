"""Run an ASGI app under uvicorn with the fast loop and parser, and our logging instead of uvicorn's.

Graceful shutdown (DESIGN §7): on the first SIGTERM or SIGINT the process marks itself not ready
(`owr_shared.health.begin_drain`) and keeps serving for `OWR_SHUTDOWN_DRAIN_SECONDS` (default 0), so
that load balancers and Kubernetes see `/health/ready` fail and stop routing to it; then uvicorn stops
accepting connections, lets the requests in flight finish (up to `OWR_SHUTDOWN_TIMEOUT_SECONDS`,
default 20) and runs the lifespan's shutdown. A second signal ends the drain at once; a second SIGINT
after that skips the wait for requests in flight.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn

from owr_shared.health import begin_drain
from owr_shared.logging import get_logger

log = get_logger("owr.serve")

DRAIN_ENV = "OWR_SHUTDOWN_DRAIN_SECONDS"
TIMEOUT_ENV = "OWR_SHUTDOWN_TIMEOUT_SECONDS"
DEFAULT_SHUTDOWN_TIMEOUT = 20


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds") from None
    if not 0 <= value <= 3600:
        raise SystemExit(f"{name} must be between 0 and 3600 seconds")
    return value


def drain_seconds() -> float:
    """How long a process keeps serving, not ready, between SIGTERM and closing its listeners."""
    return _seconds_from_env(DRAIN_ENV, 0.0)


def shutdown_timeout_seconds() -> int:
    """How long uvicorn waits for requests in flight once it stops accepting connections."""
    return round(_seconds_from_env(TIMEOUT_ENV, DEFAULT_SHUTDOWN_TIMEOUT))


def uvicorn_config(app: Any, *, host: str, port: int, forwarded_allow_ips: str = "127.0.0.1") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=shutdown_timeout_seconds(),
        timeout_keep_alive=30,
    )


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM/SIGINT starts a drain instead of stopping at once."""

    def __init__(self, config: uvicorn.Config, drain: float) -> None:
        super().__init__(config)
        self.drain = drain
        self._drain_over = threading.Event()
        self._drainer: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain <= 0 or self.should_exit:
            # No drain configured, or already stopping: uvicorn's own behaviour (a second SIGINT forces).
            super().handle_exit(sig, frame)
            return
        if self._drainer is not None:
            # A second signal during the drain ends it now.
            self._drain_over.set()
            return
        begin_drain()
        self._captured_signals.append(sig)  # re-raised by uvicorn once it has stopped, as for a plain stop
        # A thread, not the signal handler, logs and waits: a handler must not write to a stream it interrupted.
        self._drainer = threading.Thread(target=self._drain_then_exit, args=(signal.Signals(sig).name,), daemon=True)
        self._drainer.start()

    def _drain_then_exit(self, signal_name: str) -> None:
        log.info("shutdown_draining", signal=signal_name, drain_seconds=self.drain)
        self._drain_over.wait(self.drain)
        log.info("shutdown_drained")
        self.should_exit = True  # uvicorn's main loop polls this flag every 0.1 s


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket for uvicorn to listen on (as uvicorn binds its own, SO_REUSEADDR set)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(
    app: Any, *, host: str, port: int, forwarded_allow_ips: str = "127.0.0.1", admin_port: int | None = None
) -> None:
    """Serve until SIGINT/SIGTERM: drain (not ready, still serving), then finish requests in flight.

    With `admin_port`, one server listens on both ports: `app` tells the two apart by the local port
    (`owr_shared.admin.AdminPortSplit`), so they share one event loop, one lifespan and one drain.
    """
    config = uvicorn_config(app, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips)
    server = DrainingServer(config, drain_seconds())
    if admin_port is None:
        server.run()
        return
    server.run(sockets=[listening_socket(host, port), listening_socket(host, admin_port)])


def run_service(service: str, settings: Any, app: Any) -> None:
    """The body of every HTTP service's `__main__`: configure logging, then serve the API on the settings'
    port and `/metrics` with the health probes on their admin port."""
    from owr_shared.admin import AdminPortSplit
    from owr_shared.logging import configure_logging

    configure_logging(service, settings.log_level, json=settings.log_json)
    admin_port = getattr(settings, "admin_port", None)  # every HttpServiceSettings has one
    serve(
        app if admin_port is None else AdminPortSplit(app, admin_port),
        host=settings.host,
        port=settings.port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        admin_port=admin_port,
    )
