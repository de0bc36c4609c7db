"""Run an ASGI app under uvicorn with the fast loop and parser, and our logging instead of uvicorn's."""

from __future__ import annotations

from typing import Any

import uvicorn


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
        timeout_graceful_shutdown=20,
        timeout_keep_alive=30,
    )


def serve(app: Any, *, host: str, port: int, forwarded_allow_ips: str = "127.0.0.1") -> None:
    """Serve until SIGINT/SIGTERM; uvicorn drains in-flight requests before the lifespan closes."""
    uvicorn.Server(uvicorn_config(app, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips)).run()


def run_service(service: str, settings: Any, app: Any) -> None:
    """The body of every HTTP service's `__main__`: configure logging, then serve on the settings' address."""
    from owr_shared.logging import configure_logging

    configure_logging(service, settings.log_level, json=settings.log_json)
    serve(app, host=settings.host, port=settings.port, forwarded_allow_ips=settings.forwarded_allow_ips)
