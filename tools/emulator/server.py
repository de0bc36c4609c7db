"""The aiohttp application, its middleware (Date from the virtual clock, faults, stats, errors) and runners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from email.utils import format_datetime

from aiohttp import web

from tools.emulator import admin, api
from tools.emulator.faults import fault_reply
from tools.emulator.runtime import EMULATOR, ApiError, Emulator, error_response, json_response
from tools.emulator.seed import DemoSeed, seed_demo
from tools.emulator.state import EmulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SEEDS = ("demo",)
_HANG_POLL_SECONDS = 0.05


def build_app(emulator: Emulator | None = None) -> web.Application:
    """The emulator as an aiohttp application (one `Emulator` per app)."""
    app = web.Application(middlewares=[_middleware], client_max_size=64 * 1024 * 1024)
    app[EMULATOR] = emulator or Emulator()
    api.add_routes(app)
    admin.add_routes(app)
    # The readiness probe every process of `make run` answers (tools/devstack.py waits on it).
    app.router.add_get("/health/live", _healthy)
    app.router.add_get("/health/ready", _healthy)

    async def release_hangs(app: web.Application) -> None:
        app[EMULATOR].stopping.set()

    app.on_shutdown.append(release_hangs)
    return app


async def _healthy(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    emu = request.app[EMULATOR]
    path = request.path
    if path == api.API_PREFIX or path.startswith(api.API_PREFIX + "/"):
        api_path = path.removeprefix(api.API_PREFIX) or "/"
        response = await _serve_api(emu, request, handler, api_path)
        resource = request.match_info.route.resource
        route = resource.canonical.removeprefix(api.API_PREFIX) if resource is not None else api_path
        emu.stats.record(route, response.status)
    else:
        response = await _guarded(request, handler)
    # The worker dates its snapshots by this header, so it must follow the virtual clock, not the host's.
    response.headers["Date"] = format_datetime(emu.state.clock.now(), usegmt=True)
    return response


async def _serve_api(emu: Emulator, request: web.Request, handler: Handler, api_path: str) -> web.StreamResponse:
    faults = emu.faults
    if faults is not None and faults.matches(api_path):
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.take_failure():
            if faults.hang:
                await _hang(request, emu.stopping)
                # Nobody reads this; 499 ("client closed request") keeps hangs apart from 5xx in the stats.
                return web.Response(status=499)
            status, headers, body, kind = fault_reply(faults, emu.state.clock.now())
            content_type = "text/html" if kind == "html" else "application/json"
            return web.Response(status=status, headers=headers, text=body, content_type=content_type)
    return await _guarded(request, handler)


async def _hang(request: web.Request, stopping: asyncio.Event) -> None:
    """Answer nothing until the client hangs up (or the emulator stops), like a stuck upstream."""
    while not stopping.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), _HANG_POLL_SECONDS)


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a handler; every error, including aiohttp's own 404/405, leaves in OpenRouter's error shape."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = "Resource not found" if exc.status == 404 else exc.reason
        return error_response(ApiError(exc.status, message))


@dataclass
class RunningEmulator:
    """A started emulator: its addresses and its live state (tests may read or change it directly)."""

    emulator: Emulator
    host: str
    port: int
    seed: DemoSeed | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What `OPENROUTER_BASE_URL` should be."""
        return f"{self.url}{api.API_PREFIX}"

    @property
    def admin_url(self) -> str:
        return f"{self.url}{admin.ADMIN_PREFIX}"

    @property
    def state(self) -> EmulatorState:
        return self.emulator.state


@asynccontextmanager
async def running_emulator(
    host: str = "127.0.0.1", port: int = 0, *, seed: str | None = None
) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator on the running event loop (port 0 picks a free port); stop it on exit."""
    if seed is not None and seed not in SEEDS:
        raise ValueError(f"unknown seed {seed!r}; known: {', '.join(SEEDS)}")
    emu = Emulator()
    seeded = seed_demo(emu.state) if seed == "demo" else None
    app = build_app(emu)
    # No access log: it would be noise at benchmark rates, and keeps request details out of logs.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = port
        for address in runner.addresses:
            if isinstance(address, tuple):
                bound_port = int(address[1])
                break
        yield RunningEmulator(emu, host, bound_port, seeded)
    finally:
        emu.stopping.set()  # let hanging requests go before aiohttp waits for them
        await runner.cleanup()
