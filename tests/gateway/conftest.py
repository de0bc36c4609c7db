"""Gateway test scaffolding: a real upstream HTTP server (echo, slow, streaming, JWKS) and real gateways.

The upstream is a small aiohttp.web app listening on three ports (standing for auth, keys and usage);
it records every request it sees, so tests can assert what reached it (or that nothing did). Gateways
run as real uvicorn servers in this event loop, built exactly as `python -m owr_gateway` builds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from owr_gateway.__main__ import build_servers
from owr_gateway.app import GatewayApp
from owr_gateway.settings import GatewaySettings
from tests.support.http import bearer
from tests.support.ports import LoopbackUrl, closed_port, free_port

# Re-exported for the gateway tests, which import them from here.
__all__ = ["bearer", "closed_port", "free_port"]

ISSUER = "owr-auth"
AUDIENCE = "owr-api"
UPSTREAM_NAMES = ("auth", "keys", "usage")
# Limits no functional test reaches; rate-limit tests build gateways with small ones.
GENEROUS_LIMITS = {
    "anonymous": {"limit": 1_000_000, "window": 3600},
    "login": {"limit": 1_000_000, "window": 3600},
    "user": {"limit": 1_000_000, "window": 3600},
    "auth_failure": {"limit": 1_000_000, "window": 3600},
}


# --- signing keys and tokens ----------------------------------------------------------------------


@dataclass
class SigningKey:
    private: Ed25519PrivateKey
    kid: str

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    def token(self, subject: str | None = None, *, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        """A signed access token; a claim overridden with None is left out."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": subject or str(uuid.uuid4()),
            "wid": str(uuid.uuid4()),
            "role": "owner",
            "typ": "access",
            "jti": secrets.token_hex(8),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        header = {"kid": self.kid, "typ": "at+jwt", **(headers or {})}
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers=header)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate(), kid="test-key-1")


# --- the upstream ---------------------------------------------------------------------------------


@dataclass
class Seen:
    upstream: str
    method: str
    raw_path: str
    headers: list[tuple[str, str]]
    body_size: int


@dataclass
class Upstream:
    ports: dict[str, int]
    jwks: dict[str, Any]
    seen: list[Seen] = field(default_factory=list)
    jwks_fetches: int = 0
    aborted_streams: int = 0
    # API tokens auth's introspection calls active: token -> its answer (any other token is not active).
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    introspections: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def clear(self) -> None:
        self.seen.clear()
        self.grants.clear()
        self.introspections = 0


def pattern_bytes(size: int) -> bytes:
    """Deterministic bytes without any period, so a lost, doubled or reordered chunk changes the digest."""
    return hashlib.shake_128(b"owr").digest(size)


def build_upstream_app(upstream: Upstream) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port_names = {port: name for name, port in upstream.ports.items()}
        name = port_names.get(sockname[1] if sockname else 0, "?")
        if request.path == "/.well-known/jwks.json" and request.method == "GET" and "echo" not in request.query:
            upstream.jwks_fetches += 1
            return web.json_response(upstream.jwks)
        if request.path == "/health/live":
            return web.json_response({"status": "ok"})
        if request.path == "/internal/tokens/introspect" and name == "auth":
            upstream.introspections += 1
            asked = (await request.json())["token"]
            return web.json_response(upstream.grants.get(asked, {"active": False}))
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in request.content.iter_any():
                digest.update(chunk)
                size += len(chunk)
        except (aiohttp.ClientPayloadError, ConnectionResetError, asyncio.CancelledError):
            size = -1
        upstream.seen.append(Seen(name, request.method, request.raw_path, list(request.headers.items()), size))
        query = request.query
        if "sleep" in query:
            await asyncio.sleep(float(query["sleep"]))
        if "stream" in query:
            total = int(query["stream"])
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            # Up to 64 MiB: exact content to verify; beyond: one block repeated (for abort tests).
            data = pattern_bytes(total) if total <= 64 * 1024 * 1024 else pattern_bytes(256 * 1024)
            step = 256 * 1024
            try:
                for offset in range(0, total, step):
                    start = offset % len(data)
                    await response.write(data[start : start + min(step, total - offset)])
                await response.write_eof()
            except ConnectionError:
                upstream.aborted_streams += 1
            return response
        extra_headers = {
            "X-Upstream": name,
            "Keep-Alive": "timeout=99",
            "Proxy-Authenticate": "Basic",
            "X-Hop-Secret": "upstream-only",
            "Connection": "X-Hop-Secret",
            "X-Request-ID": "upstream-should-not-leak",
        }
        body = {
            "upstream": name,
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": list(request.headers.items()),
            "body_size": size,
            "body_sha256": digest.hexdigest(),
        }
        status = int(query.get("status", "200"))
        if "redirect" in query:
            # What Starlette's redirect_slashes does: an absolute URL built from the Host it was sent.
            extra_headers["Location"] = f"http://{request.host}{query['redirect']}"
        return web.json_response(body, status=status, headers=extra_headers)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@pytest.fixture(scope="session")
async def upstream(signing_key: SigningKey) -> AsyncIterator[Upstream]:
    state = Upstream(ports={}, jwks={"keys": [signing_key.jwk()]})
    app = build_upstream_app(state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for name in UPSTREAM_NAMES:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        state.ports[name] = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
    yield state
    await runner.cleanup()


# --- gateways -------------------------------------------------------------------------------------


@dataclass
class Served:
    """A gateway's two loopback ports: the public one and the admin one (health, metrics)."""

    port: int
    admin_port: int
    url = LoopbackUrl("port")
    admin_url = LoopbackUrl("admin_port")


@dataclass
class Gateway(Served):
    app: GatewayApp


async def scrape_metrics(client: aiohttp.ClientSession, served: Served) -> str:
    """The admin port's Prometheus text, after checking the public port does not serve it."""
    async with client.get(served.url + "/metrics") as response:
        assert response.status == 404
    async with client.get(served.admin_url + "/metrics") as response:
        assert response.status == 200
        return await response.text()


def gateway_settings(upstream: Upstream, redis_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "OWR_ENV": "test",
        "REDIS_URL": redis_url,
        "host": "127.0.0.1",
        "port": 0,
        "admin_port": 0,
        "auth_url": upstream.url("auth"),
        "keys_url": upstream.url("keys"),
        "usage_url": upstream.url("usage"),
        "rate_limits": GENEROUS_LIMITS,
        # A loaded test machine can take longer than production's 0.25 s; a spurious fail-open would
        # make exact-count assertions flaky. Redis-down tests use a closed port, refused at once.
        "redis_timeout": 2.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def run_gateway(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    """Serve the main and admin apps in this loop on ephemeral ports; stop both afterwards."""
    main, admin = build_servers(settings)
    tasks = [asyncio.create_task(main.serve()), asyncio.create_task(admin.serve())]
    try:
        deadline = time.monotonic() + 10
        while not (main.started and admin.started):
            if time.monotonic() > deadline or any(t.done() for t in tasks):
                raise RuntimeError("gateway did not start")
            await asyncio.sleep(0.01)
        port = main.servers[0].sockets[0].getsockname()[1]
        admin_port = admin.servers[0].sockets[0].getsockname()[1]
        yield Gateway(app=cast(GatewayApp, main.config.app), port=port, admin_port=admin_port)
    finally:
        main.should_exit = admin.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


GatewayFactory = Callable[..., Any]


@pytest.fixture(scope="session")
async def gateway(upstream: Upstream, redis_url: str) -> AsyncIterator[Gateway]:
    """The default gateway: default routes, limits no functional test reaches."""
    async with run_gateway(gateway_settings(upstream, redis_url)) as gw:
        yield gw


@pytest.fixture
async def make_gateway(upstream: Upstream, redis_url: str) -> AsyncIterator[GatewayFactory]:
    """Start extra gateways with setting overrides, stopped at the end of the test."""
    stack: list[Any] = []

    async def start(**overrides: Any) -> Gateway:
        manager = run_gateway(gateway_settings(upstream, redis_url, **overrides))
        gw = await manager.__aenter__()
        stack.append(manager)
        return gw

    yield start
    for manager in reversed(stack):
        await manager.__aexit__(None, None, None)


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


@pytest.fixture(autouse=True)
def _clear_upstream(upstream: Upstream) -> None:
    upstream.clear()


# --- a raw HTTP/1.1 client, for request targets no ordinary client would send ---------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(port: int, head: str, body: bytes = b"", *, chunks: list[bytes] | None = None) -> RawResponse:
    """Send `head` (request line and headers, without the final blank line) verbatim, then the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode("latin-1") + b"\r\nConnection: close\r\n\r\n" + body)
        for chunk in chunks or []:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if chunks is not None:
            writer.write(b"0\r\n\r\n")
        with contextlib.suppress(ConnectionError):  # the server may answer and close before reading all
            await writer.drain()
        data = await asyncio.wait_for(_read_all(reader), timeout=10)
    finally:
        writer.close()
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        rest = _dechunk(rest)
    return RawResponse(status, headers, rest)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        try:
            part = await reader.read(65536)
        except ConnectionError:
            break
        if not part:
            break
        parts.append(part)
    return b"".join(parts)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def metric(name: str, **labels: str) -> float:
    """Current value of one sample in this process's Prometheus registry (0 when absent)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0
