"""Which HTTP client should the gateway proxy with? A minimal pure-ASGI proxy in front of a trivial upstream,
once with aiohttp's client and once with httpx's default transport, against the upstream called directly.

Printed as throughput ratios to the direct call, measured in one run. The gateway uses aiohttp because of this.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from typing import Any

from tools.devinfra import free_port, wait_for_port


def upstream_app() -> Any:
    """A trivial FastAPI handler: the cheapest upstream a real service could be."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/me")
    async def me() -> dict[str, str]:
        return {"id": "00000000-0000-0000-0000-000000000000", "email": "someone@example.com"}

    return app


def aiohttp_proxy(upstream: str) -> Any:
    import aiohttp

    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] != "http":
            return
        if session is None:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        async with session.get(upstream + scope["path"]) as response:
            body = await response.read()
            await send(
                {"type": "http.response.start", "status": response.status, "headers": list(response.raw_headers)}
            )
        await send({"type": "http.response.body", "body": body})

    return app


def httpx_proxy(upstream: str) -> Any:
    import httpx

    client: httpx.AsyncClient | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal client
        if scope["type"] != "http":
            return
        if client is None:
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256))
        try:
            response = await client.get(upstream + scope["path"])
        except httpx.HTTPError:
            # Its pool gives up under this load; count the request as failed rather than crash the proxy.
            await send({"type": "http.response.start", "status": 502, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.headers.raw})
        await send({"type": "http.response.body", "body": response.content})

    return app


def serve(kind: str, port: int, upstream: str) -> None:
    import uvicorn

    if kind == "upstream":
        app = upstream_app()
    else:
        app = aiohttp_proxy(upstream) if kind == "aiohttp" else httpx_proxy(upstream)
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning", access_log=False
    )


def wrk(url: str, seconds: int, connections: int) -> float:
    """Successful requests per second (errors and non-2xx answers do not count)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    total = errors = 0
    for line in out.splitlines():
        words = line.split()
        if "requests in" in line:
            total = int(words[0])
        elif line.strip().startswith("Non-2xx"):
            errors += int(words[-1])
        elif line.strip().startswith("Socket errors"):
            errors += sum(int(w.rstrip(",")) for w in words if w.rstrip(",").isdigit())
    return max(0, total - errors) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "UPSTREAM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0
    if not shutil.which("wrk"):
        print("proxy client comparison skipped: it needs wrk (apt-get install wrk)")
        return 0
    ports = {"upstream": free_port(), "aiohttp": free_port(), "httpx": free_port()}
    upstream = f"http://127.0.0.1:{ports['upstream']}"
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.proxy_clients", "--serve", kind, str(port), upstream])
        for kind, port in ports.items()
    ]
    try:
        for port in ports.values():
            wait_for_port("127.0.0.1", port)
        time.sleep(0.5)
        results = {}
        for kind, port in ports.items():
            wrk(f"http://127.0.0.1:{port}/me", 1, args.connections)  # warm-up
            results[kind] = wrk(f"http://127.0.0.1:{port}/me", args.seconds, args.connections)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    direct = results["upstream"]
    print(f"proxy client choice: minimal pure-ASGI proxy, {args.connections} connections, {args.seconds}s each")
    print(f"  direct            {direct:8.0f} req/s")
    for kind in ("aiohttp", "httpx"):
        print(f"  via {kind:13s} {results[kind]:8.0f} req/s   {results[kind] / direct:.2f}x direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
