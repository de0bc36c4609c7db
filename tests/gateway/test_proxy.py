"""The proxy hop: ids and traces, forwarded and hop-by-hop headers, bodies both ways, upstream failures."""

from __future__ import annotations

import asyncio
import hashlib
import re

import aiohttp
from redis.asyncio import Redis

from owr_shared.context import parse_traceparent
from tests.gateway.conftest import (
    Gateway,
    GatewayFactory,
    SigningKey,
    Upstream,
    bearer,
    closed_port,
    metric,
    pattern_bytes,
    raw_request,
)

PROBLEM = "application/problem+json"


def seen_headers(upstream: Upstream) -> dict[str, str]:
    assert len(upstream.seen) == 1
    return {k.lower(): v for k, v in upstream.seen[0].headers}


async def test_request_id_is_kept_when_well_formed(gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream):
    async with client.post(gateway.url + "/api/v1/auth/login", headers={"X-Request-ID": "abc-123.x:y_z"}) as r:
        assert r.headers["X-Request-ID"] == "abc-123.x:y_z"
        assert r.headers.getall("X-Request-ID") == ["abc-123.x:y_z"]  # the upstream's own copy is not passed on
    assert seen_headers(upstream)["x-request-id"] == "abc-123.x:y_z"


async def test_request_id_is_replaced_when_malformed_or_missing(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream
):
    for sent in ({"X-Request-ID": "bad id with spaces"}, {"X-Request-ID": "x" * 200}, {}):
        upstream.clear()
        async with client.post(gateway.url + "/api/v1/auth/login", headers=sent) as response:
            echoed = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)
        assert seen_headers(upstream)["x-request-id"] == echoed


async def test_request_id_on_gateway_answers(gateway: Gateway, client: aiohttp.ClientSession):
    async with client.get(gateway.url + "/nowhere", headers={"X-Request-ID": "trace-me-1"}) as response:
        assert response.status == 404
        assert response.headers["X-Request-ID"] == "trace-me-1"
        assert (await response.json())["request_id"] == "trace-me-1"


async def test_traceparent_forwarded_when_valid(gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {"traceparent": traceparent, "tracestate": "vendor=1"}
    async with client.post(gateway.url + "/api/v1/auth/login", headers=headers) as response:
        assert response.status == 200
    seen = seen_headers(upstream)
    assert seen["traceparent"] == traceparent
    assert seen["tracestate"] == "vendor=1"


async def test_traceparent_generated_when_invalid_or_missing(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream
):
    invalid = "00-00000000000000000000000000000000-b7ad6b7169203331-01"
    for sent in ({"traceparent": invalid, "tracestate": "vendor=1"}, {"traceparent": "garbage"}, {}):
        upstream.clear()
        async with client.post(gateway.url + "/api/v1/auth/login", headers=sent) as response:
            assert response.status == 200
        seen = seen_headers(upstream)
        assert parse_traceparent(seen["traceparent"]) is not None
        assert seen["traceparent"] != sent.get("traceparent")
        assert "tracestate" not in seen  # it belonged to a trace that was not continued


async def test_hop_by_hop_headers_are_dropped_both_ways(gateway: Gateway, upstream: Upstream, signing_key: SigningKey):
    token = signing_key.token()
    response = await raw_request(
        gateway.port,
        "GET /api/v1/keys/abc HTTP/1.1\r\n"
        "Host: gw.example\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Connection: X-Custom-Hop\r\n"
        "X-Custom-Hop: secret-for-next-hop-only\r\n"
        "Keep-Alive: timeout=5\r\n"
        "TE: trailers\r\n"
        "Trailer: X-Checksum\r\n"
        "Proxy-Authorization: Basic cHJveHk6cGFzcw==\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "X-End-To-End: kept",
    )
    assert response.status == 200
    seen = seen_headers(upstream)
    for name in (
        "connection",
        "x-custom-hop",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    ):
        assert name not in seen, name
    assert seen["x-end-to-end"] == "kept"
    assert seen["authorization"] == f"Bearer {token}"
    assert seen["x-forwarded-host"] == "gw.example"
    # The upstream answered with Keep-Alive, Proxy-Authenticate and a Connection-listed header.
    for name in ("keep-alive", "proxy-authenticate", "x-hop-secret"):
        assert name not in response.headers, name
    assert response.headers["x-upstream"] == "keys"
    assert response.headers["x-request-id"] != "upstream-should-not-leak"


async def test_forwarded_for_comes_from_the_peer_and_cannot_be_spoofed(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, redis_client: Redis
):
    headers = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Real-IP": "6.6.6.6",
        "Forwarded": "for=6.6.6.6;proto=https",
    }
    async with client.post(gateway.url + "/api/v1/auth/refresh", headers=headers) as response:
        assert response.status == 200
    seen = seen_headers(upstream)
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert "x-real-ip" not in seen
    assert "forwarded" not in seen
    # The rate limit counted the real peer, not the claimed address.
    assert [k async for k in redis_client.scan_iter("owr:rl:anonymous:127.0.0.1:*")]
    assert not [k async for k in redis_client.scan_iter("owr:rl:anonymous:6.6.6.6:*")]


async def test_forwarded_for_from_a_trusted_proxy(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream, redis_client: Redis
):
    gw = await make_gateway(trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.2.3", "X-Forwarded-Proto": "https"}
    async with client.post(gw.url + "/api/v1/auth/refresh", headers=headers) as response:
        assert response.status == 200
    seen = seen_headers(upstream)
    assert seen["x-forwarded-for"] == "203.0.113.7"  # right-most untrusted; the client wrote 6.6.6.6 itself
    assert seen["x-forwarded-proto"] == "https"
    assert [k async for k in redis_client.scan_iter("owr:rl:anonymous:203.0.113.7:*")]


async def test_request_body_is_relayed(gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream):
    payload = b'{"email": "a@example.com", "password": "correct horse battery staple"}'
    headers = {"Content-Type": "application/json"}
    async with client.post(gateway.url + "/api/v1/auth/login", data=payload, headers=headers) as response:
        echo = await response.json()
    assert echo["body_size"] == len(payload)
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert dict(echo["headers"])["Content-Type"] == "application/json"


async def test_chunked_upload_under_the_limit_streams_intact(gateway: Gateway, upstream: Upstream):
    chunks = [pattern_bytes(100_000 + i) for i in range(8)]  # ~800 KB, below the 1 MiB default
    response = await raw_request(
        gateway.port, "POST /api/v1/auth/register HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked", chunks=chunks
    )
    assert response.status == 200
    data = b"".join(chunks)
    assert upstream.seen[0].body_size == len(data)
    assert b'"body_sha256": "%s"' % hashlib.sha256(data).hexdigest().encode() in response.body


async def test_content_length_over_the_limit_is_413_before_upstream(gateway: Gateway, upstream: Upstream):
    response = await raw_request(
        gateway.port, f"POST /api/v1/auth/register HTTP/1.1\r\nHost: gw\r\nContent-Length: {1024 * 1024 + 1}"
    )
    assert response.status == 413
    assert response.headers["content-type"] == PROBLEM
    assert upstream.seen == []


async def test_chunked_body_growing_past_the_limit_is_413(make_gateway: GatewayFactory, upstream: Upstream):
    gw = await make_gateway(max_body_bytes=64 * 1024)
    # The first chunk alone is over the limit: refused before the upstream is contacted.
    response = await raw_request(
        gw.port,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked",
        chunks=[b"x" * (65 * 1024)],
    )
    assert response.status == 413
    assert upstream.seen == []
    # Small chunks that add up past the limit: refused mid-stream; the upstream never gets a whole body.
    response = await raw_request(
        gw.port,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked",
        chunks=[b"y" * 8192] * 12,
    )
    assert response.status == 413
    assert response.headers["content-type"] == PROBLEM
    assert all(seen.body_size == -1 for seen in upstream.seen)


async def test_large_response_streams_intact(gateway: Gateway, client: aiohttp.ClientSession, signing_key: SigningKey):
    size = 8 * 1024 * 1024 + 17
    digest = hashlib.sha256()
    received = 0
    async with client.get(
        gateway.url + f"/api/v1/usage/export?stream={size}", headers=bearer(signing_key.token())
    ) as r:
        assert r.status == 200
        assert "Content-Length" not in r.headers  # relayed as a stream, not buffered
        async for chunk in r.content.iter_any():
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(pattern_bytes(size)).hexdigest()


async def test_client_leaving_mid_stream_stops_the_upstream_read(
    gateway: Gateway, upstream: Upstream, signing_key: SigningKey
):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        b"GET /api/v1/usage/export?stream=%d HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n\r\n"
        % (4 * 1024**3, signing_key.token().encode())
    )
    received = 0
    while received < 1024 * 1024:
        received += len(await reader.read(65536))
    aborted = upstream.aborted_streams
    writer.close()
    # Without noticing the disconnect, the gateway would keep draining 4 GiB from the upstream.
    for _ in range(100):
        if upstream.aborted_streams > aborted:
            break
        await asyncio.sleep(0.05)
    assert upstream.aborted_streams == aborted + 1


async def test_upstream_status_and_head_pass_through(
    gateway: Gateway, client: aiohttp.ClientSession, signing_key: SigningKey
):
    async with client.get(gateway.url + "/api/v1/keys/x?status=418", headers=bearer(signing_key.token())) as r:
        assert r.status == 418
        assert (await r.json())["upstream"] == "keys"
        assert "RateLimit" in r.headers
    async with client.head(gateway.url + "/api/v1/keys/x", headers=bearer(signing_key.token())) as r:
        assert r.status == 200
        assert await r.read() == b""


async def test_upstream_redirects_to_itself_become_relative(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey
):
    url = gateway.url + "/api/v1/keys?status=307&redirect=/api/v1/keys/?page=2"
    async with client.get(url, headers=bearer(signing_key.token()), allow_redirects=False) as response:
        assert response.status == 307
        assert response.headers["Location"] == "/api/v1/keys/?page=2"
    # Elsewhere: left alone.
    url = gateway.url + "/api/v1/keys?status=302"
    async with client.get(url, headers=bearer(signing_key.token()), allow_redirects=False) as response:
        assert response.status == 302
        assert "Location" not in response.headers


async def test_two_authorization_headers_are_refused(gateway: Gateway, upstream: Upstream, signing_key: SigningKey):
    response = await raw_request(
        gateway.port,
        "GET /api/v1/keys HTTP/1.1\r\nHost: gw\r\n"
        f"Authorization: Bearer {signing_key.token()}\r\nAuthorization: Bearer {signing_key.token()}",
    )
    assert response.status == 400
    assert response.headers["content-type"] == PROBLEM
    assert upstream.seen == []


def assert_no_internals(body: bytes, *ports: int) -> None:
    text = body.decode().lower()
    assert "127.0.0.1" not in text
    assert "localhost" not in text
    for port in ports:
        assert str(port) not in text
    for word in ("error:", "exception", "traceback", "connect call failed", "aiohttp", "errno"):
        assert word not in text


async def test_upstream_down_is_503_with_retry_after(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, signing_key: SigningKey
):
    port = closed_port()
    gw = await make_gateway(usage_url=f"http://127.0.0.1:{port}")
    before = metric("owr_gateway_upstream_errors_total", upstream="usage", kind="unreachable")
    async with client.get(gw.url + "/api/v1/usage/summary", headers=bearer(signing_key.token())) as response:
        assert response.status == 503  # the request never reached it: a fault the client may retry
        assert response.headers["Retry-After"] == "1"
        assert response.content_type == PROBLEM
        body = await response.read()
    assert_no_internals(body, port)
    assert metric("owr_gateway_upstream_errors_total", upstream="usage", kind="unreachable") == before + 1


async def test_upstream_too_slow_is_504(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey
):
    gw = await make_gateway(upstream_read_timeout=0.3)
    before = metric("owr_gateway_upstream_errors_total", upstream="keys", kind="timeout")
    async with client.get(gw.url + "/api/v1/keys/x?sleep=1.5", headers=bearer(signing_key.token())) as response:
        assert response.status == 504
        assert response.content_type == PROBLEM
        body = await response.read()
    assert_no_internals(body, upstream.ports["keys"])
    assert metric("owr_gateway_upstream_errors_total", upstream="keys", kind="timeout") == before + 1
