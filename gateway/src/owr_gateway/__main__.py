"""`python -m owr_gateway`: the public app and the admin app, two uvicorn servers in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from owr_gateway.admin import create_admin_app
from owr_gateway.app import create_app
from owr_gateway.settings import GatewaySettings
from owr_shared.health import begin_drain
from owr_shared.logging import configure_logging, get_logger
from owr_shared.serve import drain_seconds, uvicorn_config
from owr_shared.settings import load_settings

log = get_logger("owr.gateway")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve_all` (two servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_servers(settings: GatewaySettings) -> tuple[uvicorn.Server, uvicorn.Server]:
    app = create_app(settings)
    main_config = uvicorn_config(app, host=settings.host, port=settings.port)
    # The gateway decides itself whose X-Forwarded-For to believe (GATEWAY_TRUSTED_PROXIES);
    # uvicorn's own rewriting would let a local client spoof its address.
    main_config.proxy_headers = False
    admin_config = uvicorn_config(create_admin_app(app.state), host=settings.host, port=settings.admin_port)
    admin_config.lifespan = "off"  # the admin app owns nothing; the main app's lifespan opens the clients
    return _Server(main_config), _Server(admin_config)


async def _serve_one(server: uvicorn.Server) -> int:
    """Serve; uvicorn exits the process when it cannot bind or start, which we turn into a status."""
    try:
        await server.serve()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


async def serve_all(servers: tuple[uvicorn.Server, ...], drain: float = 0.0) -> int:
    """Serve until SIGINT/SIGTERM; the exit status.

    The first signal starts a drain of `drain` seconds (`OWR_SHUTDOWN_DRAIN_SECONDS`): readiness on the
    admin port answers 503 while both servers keep serving, so load balancers stop sending traffic. Then
    both servers stop accepting and finish the requests in flight. A signal during the drain ends it at
    once; a second SIGINT after that skips the wait for requests in flight.
    """
    loop = asyncio.get_running_loop()
    draining: list[asyncio.TimerHandle] = []

    def exit_all() -> None:
        for server in servers:
            server.should_exit = True

    def stop(sig: signal.Signals) -> None:
        if drain > 0 and not draining and not any(server.should_exit for server in servers):
            begin_drain()
            log.info("shutdown_draining", signal=sig.name, drain_seconds=drain)
            draining.append(loop.call_later(drain, exit_all))
            return
        for timer in draining:
            timer.cancel()
        for server in servers:
            if server.should_exit and sig == signal.SIGINT:
                server.force_exit = True
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        tasks = [asyncio.create_task(_serve_one(server)) for server in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # If one server stops (or fails to start), stop the other too.
        for server in servers:
            server.should_exit = True
        statuses = await asyncio.gather(*tasks)
        return max(statuses)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_json)
    servers = build_servers(settings)
    log.info("gateway_starting", port=settings.port, admin_port=settings.admin_port)
    import uvloop

    status = uvloop.run(serve_all(servers, drain_seconds()))
    if status:
        log.error("gateway_stopped", status=status)
        raise SystemExit(status)


if __name__ == "__main__":
    main()
