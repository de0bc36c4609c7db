"""Each step of the gateway's pipeline on its own: screen, route, admit, forward, relay, and the answers."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.client_reqrep import ConnectionKey

from owr_gateway.auth import CachedPrincipal
from owr_gateway.clientip import TrustedProxies, client_address
from owr_gateway.pipeline.admit import INVALID, Admission, refusal_of
from owr_gateway.pipeline.forward import BodyTooLarge, ClientGone, Forwarder, upstream_failure, upstream_headers
from owr_gateway.pipeline.incoming import Incoming, read_headers
from owr_gateway.pipeline.problems import Exchange, Refusal
from owr_gateway.pipeline.relay import Relay
from owr_gateway.pipeline.route import NO_BODY, Router
from owr_gateway.pipeline.screen import screen
from owr_gateway.ratelimit import ALLOWED, LIMITED, REVOKED, UNAVAILABLE, Decision
from owr_gateway.routing import RouteTable
from owr_gateway.settings import GatewaySettings, RouteConfig
from owr_shared.errors import INVALID_TOKEN as INVALID_TOKEN_PROBLEM
from owr_shared.jwt import InvalidToken
from tests.gateway.conftest import metric

LIMIT_HEADERS = [(b"ratelimit-policy", b'"user";q=600;w=60')]


def refused(call: Any, *args: Any) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args)
    return caught.value


def incoming(*headers: tuple[str, str]) -> Incoming:
    return read_headers([(name.encode(), value.encode()) for name, value in headers])


# --- screen ---------------------------------------------------------------------------------------


def test_screen_hides_internal_and_refuses_ambiguous_paths():
    hidden = refused(screen, "/internal/keys", b"/internal/keys")
    assert (hidden.problem.status, hidden.problem.slug, hidden.detail) == (
        404,
        "not-found",
        "No route matches this path.",
    )
    ambiguous = refused(screen, "/api/v1/keys/../auth", b"/api/v1/keys/../auth")
    assert (ambiguous.problem.status, ambiguous.problem.slug) == (400, "bad-request")
    screen("/api/v1/keys", b"/api/v1/keys")  # a plain path passes: no Refusal raised


# --- route ----------------------------------------------------------------------------------------


def router(max_body: int = 100) -> Router:
    return Router(RouteTable(GatewaySettings(OWR_ENV="test").routes), max_body)


def test_route_matches_or_is_not_found():
    assert router().match("/api/v1/keys/abc").prefix == "/api/v1/keys"
    assert refused(router().match, "/api/v1/keysx").problem.status == 404


def test_route_checks_method_authorization_and_declared_length():
    keys = router().match("/api/v1/keys")
    post_only = RouteConfig(prefix="/api/v1/things", upstream="keys", auth="none", policy="anonymous", methods=["post"])
    things = RouteTable([post_only]).match("/api/v1/things")
    assert things is not None
    assert router().check(keys, "GET", incoming()) == NO_BODY
    assert router().check(keys, "POST", incoming(("content-length", "100"))) == 100

    wrong_method = refused(router().check, things, "GET", incoming())
    assert (wrong_method.problem.status, wrong_method.headers) == (405, ((b"allow", b"POST"),))
    twice = refused(router().check, keys, "GET", incoming(("authorization", "Bearer a"), ("authorization", "Bearer b")))
    assert (twice.problem.status, twice.detail) == (400, "Send at most one Authorization header.")
    for headers in ([("content-length", "1x")], [("content-length", "5"), ("transfer-encoding", "chunked")]):
        invalid = refused(router().check, keys, "POST", incoming(*headers))
        assert (invalid.problem.status, invalid.headers) == (400, ((b"connection", b"close"),))
    large = refused(router().check, keys, "POST", incoming(("content-length", "101")))
    assert (large.problem.status, large.problem.slug, large.problem.title) == (
        413,
        "payload-too-large",
        "Content Too Large",
    )
    assert large.detail == "The request body exceeds 100 bytes."


# --- the request headers --------------------------------------------------------------------------


def test_read_headers_keeps_end_to_end_headers_and_picks_out_the_rest():
    parsed = incoming(
        ("accept", "text/plain"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic x"),
        ("x-real-ip", "6.6.6.6"),
        ("authorization", "Bearer t"),
        ("x-forwarded-for", "1.1.1.1"),
        ("x-forwarded-for", "2.2.2.2"),
        ("connection", "x-a"),
        ("connection", "x-b"),
        ("host", "example.org"),
        ("x-request-id", "req-1"),
        ("traceparent", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
    )
    assert parsed.forward == [("accept", "text/plain"), ("authorization", "Bearer t")]
    assert (parsed.authorization, parsed.duplicate_authorization) == (b"Bearer t", False)
    assert (parsed.forwarded_for, parsed.connection, parsed.host) == (b"1.1.1.1,2.2.2.2", b"x-a,x-b", b"example.org")
    assert parsed.request_id == "req-1"
    assert parsed.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert (parsed.trace_id, parsed.tracestate) == ("0af7651916cd43dd8448eb211c80319c", b"a=1,b=2")
    assert (parsed.content_length, parsed.chunked) == (None, False)


def test_read_headers_starts_a_trace_when_the_callers_is_invalid():
    parsed = incoming(("traceparent", "garbage"), ("tracestate", "a=1"), ("x-request-id", "bad id\n"))
    assert parsed.traceparent.startswith("00-")
    assert parsed.trace_id == parsed.traceparent[3:35]
    assert parsed.tracestate is None  # it belonged to the invalid trace
    assert parsed.request_id != "bad id\n"


# --- admit ----------------------------------------------------------------------------------------


@dataclass
class FakeLimiter:
    decision: Decision = field(default_factory=lambda: Decision(ALLOWED, LIMIT_HEADERS))
    checks: list[tuple[Any, ...]] = field(default_factory=list)

    async def check(self, policy: str, subject: str, **revocation: Any) -> Decision:
        self.checks.append((policy, subject, revocation))
        return self.decision


class FakeAuthenticator:
    async def authenticate(self, authorization: bytes | None) -> CachedPrincipal:
        if authorization != b"Bearer good":
            raise InvalidToken("The token is malformed.")
        return CachedPrincipal("user-1", issued_at=111, expires_at=2**40)


@dataclass
class FakeState:
    limiter: Any = field(default_factory=FakeLimiter)
    authenticator: Any = field(default_factory=FakeAuthenticator)
    introspector: Any = None


async def test_admit_counts_users_by_subject_and_anonymous_callers_by_address():
    state = FakeState()
    admission = Admission(state)  # type: ignore[arg-type]
    keys, jwks = router().match("/api/v1/keys"), router().match("/.well-known/jwks.json")
    assert await admission.admit(keys, incoming(("authorization", "Bearer good")), "1.2.3.4") is state.limiter.decision
    await admission.admit(jwks, incoming(), "1.2.3.4")
    assert state.limiter.checks == [
        ("user", "user-1", {"user_id": "user-1", "issued_at": 111, "session_id": None, "workspace_id": None}),
        ("anonymous", "1.2.3.4", {}),
    ]


async def test_admit_refuses_while_starting_and_without_a_valid_token():
    keys = router().match("/api/v1/keys")
    starting = Admission(FakeState(limiter=None))  # type: ignore[arg-type]
    with pytest.raises(Refusal) as caught:
        await starting.admit(keys, incoming(), "1.2.3.4")
    assert (caught.value.problem.status, caught.value.headers) == (503, ((b"retry-after", b"1"),))

    admission = Admission(FakeState())  # type: ignore[arg-type]
    for authorization, challenge in ((None, b"Bearer"), ("Bearer bad", b'Bearer error="invalid_token"')):
        headers = [("authorization", authorization)] if authorization else []
        with pytest.raises(Refusal) as caught:
            await admission.admit(keys, incoming(*headers), "1.2.3.4")
        refusal = caught.value
        assert (refusal.problem.status, refusal.problem.slug, refusal.problem.title) == (
            401,
            "invalid-token",
            "Invalid Token",
        )
        assert refusal.headers == ((b"www-authenticate", challenge),)

    api_tokens_off = Admission(FakeState())  # type: ignore[arg-type]  # no introspector: API tokens are refused
    with pytest.raises(Refusal) as caught:
        await api_tokens_off.admit(keys, incoming(("authorization", "Bearer owr_abc")), "1.2.3.4")
    assert caught.value.detail == "The API token is unknown, revoked or expired."


async def test_admit_refuses_what_the_limiter_does_not_allow():
    limited = FakeLimiter(Decision(LIMITED, LIMIT_HEADERS, retry_after=7))
    with pytest.raises(Refusal) as caught:
        await Admission(FakeState(limiter=limited)).admit(router().match("/.well-known/jwks.json"), incoming(), "ip")  # type: ignore[arg-type]
    assert caught.value.problem.status == 429


def test_refusal_of_each_decision():
    answers = {
        outcome: refusal_of(Decision(outcome, LIMIT_HEADERS, retry_after=3))
        for outcome in (INVALID, REVOKED, LIMITED, UNAVAILABLE)
    }
    assert {outcome: (r.problem.status, r.problem.slug) for outcome, r in answers.items()} == {
        INVALID: (401, "invalid-token"),
        REVOKED: (401, "invalid-token"),
        LIMITED: (429, "rate-limited"),
        UNAVAILABLE: (503, "service-unavailable"),
    }
    assert answers[REVOKED].detail == "The token has been revoked."
    assert list(answers[LIMITED].headers) == [(b"retry-after", b"3"), *LIMIT_HEADERS]
    assert list(answers[UNAVAILABLE].headers) == [(b"retry-after", b"3"), *LIMIT_HEADERS]


def test_client_address_believes_only_trusted_proxies():
    proxies = TrustedProxies(["10.0.0.1"])
    assert client_address(("10.0.0.1", 1), b"1.2.3.4", proxies) == ("1.2.3.4", True)
    assert client_address(("10.0.0.1", 1), None, proxies) == ("10.0.0.1", True)
    assert client_address(("203.0.113.9", 1), b"1.2.3.4", proxies) == ("203.0.113.9", False)
    assert client_address(None, b"1.2.3.4", TrustedProxies([])) == ("unknown", False)


# --- forward --------------------------------------------------------------------------------------


def test_upstream_headers_are_decided_by_the_gateway():
    parsed = incoming(
        ("accept", "*/*"),
        ("x-secret", "hop"),
        ("connection", "X-Secret"),
        ("authorization", "Bearer owr_abc"),
        ("host", "api.example.org"),
        ("x-forwarded-proto", "https"),
    )
    swapped = Decision(ALLOWED, [], upstream_token="minted.jwt")
    headers = upstream_headers(parsed, swapped, "1.2.3.4", False, "http")
    assert headers == [
        ("accept", "*/*"),
        ("authorization", "Bearer minted.jwt"),
        ("x-request-id", parsed.request_id),
        ("traceparent", parsed.traceparent),
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "http"),  # the peer is not a trusted proxy
        ("x-forwarded-host", "api.example.org"),
    ]
    trusted = upstream_headers(parsed, Decision(ALLOWED, []), "1.2.3.4", True, "http")
    assert ("x-forwarded-proto", "https") in trusted
    assert ("authorization", "Bearer owr_abc") in trusted


def test_upstream_failures_are_answered_and_counted():
    before = metric("owr_gateway_upstream_errors_total", upstream="keys", kind="timeout")
    timeout = upstream_failure("keys", TimeoutError())
    assert timeout is not None
    assert (timeout.problem.status, timeout.problem.slug) == (504, "upstream-timeout")
    assert metric("owr_gateway_upstream_errors_total", upstream="keys", kind="timeout") == before + 1
    broken = upstream_failure("keys", aiohttp.ServerDisconnectedError())  # after the request was written
    assert broken is not None
    assert (broken.problem.status, broken.problem.title) == (502, "Bad Gateway")
    assert upstream_failure("keys", ValueError()) is None  # a bug, not an upstream's failure


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ConnectionTimeoutError(),  # no pooled connection free within the connect timeout
        aiohttp.ClientConnectorError(
            ConnectionKey("usage", 80, False, True, None, None, None), ConnectionRefusedError()
        ),
    ],
)
def test_a_request_that_never_reached_its_upstream_is_a_503_with_retry_after(exc: Exception):
    kind = "busy" if isinstance(exc, aiohttp.ConnectionTimeoutError) else "unreachable"
    before = metric("owr_gateway_upstream_errors_total", upstream="usage", kind=kind)
    refusal = upstream_failure("usage", exc)
    assert refusal is not None
    assert (refusal.problem.status, refusal.problem.slug) == (503, "service-unavailable")
    assert (b"retry-after", b"1") in refusal.headers
    assert metric("owr_gateway_upstream_errors_total", upstream="usage", kind=kind) == before + 1


def messages(*items: dict[str, Any]) -> Any:
    queue = list(items)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def chunked(*bodies: bytes, complete: bool = True) -> Any:
    """The ASGI messages of a body sent in pieces (its last one missing when not `complete`)."""
    items = [{"type": "http.request", "body": body, "more_body": True} for body in bodies]
    if complete:
        items[-1]["more_body"] = False
    return messages(*items)


async def test_read_body_whole_streamed_or_refused():
    forwarder = Forwarder(FakeState(), {}, max_body=10)  # type: ignore[arg-type]
    assert (await forwarder.read_body(messages(), 0, False)).data == b""
    assert (await forwarder.read_body(messages(), NO_BODY, False)).data is None
    whole = await forwarder.read_body(messages({"type": "http.request", "body": b"abc"}), 3, False)
    assert (whole.data, whole.done) == (b"abc", True)
    with pytest.raises(ClientGone):
        await forwarder.read_body(messages({"type": "http.disconnect"}), 3, False)
    with pytest.raises(Refusal):
        await forwarder.read_body(messages({"type": "http.request", "body": b"x" * 11}), NO_BODY, True)

    streamed = await forwarder.read_body(chunked(b"abcd", b"efgh"), NO_BODY, True)
    done_before = streamed.done
    assert [chunk async for chunk in streamed.data] == [b"abcd", b"efgh"]
    assert (done_before, streamed.done) == (False, True)

    over = await forwarder.read_body(chunked(b"abcdef", b"ghijkl", complete=False), NO_BODY, True)
    with pytest.raises(BodyTooLarge):
        _ = [chunk async for chunk in over.data]
    assert over.too_large


# --- relay ----------------------------------------------------------------------------------------


def test_relay_drops_hop_by_hop_headers_and_internal_locations():
    relay = Relay({"keys": "http://127.0.0.1:8002"})
    raw = [
        (b"Content-Type", b"application/json"),
        (b"Connection", b"X-Hop"),
        (b"X-Hop", b"secret"),
        (b"Keep-Alive", b"timeout=5"),
        (b"X-Request-ID", b"upstream"),
        (b"RateLimit", b"upstream"),
        (b"Retry-After", b"5"),
        (b"Location", b"http://127.0.0.1:8002/api/v1/keys/"),
    ]
    assert relay.response_headers("keys", raw) == [
        (b"Content-Type", b"application/json"),
        (b"Retry-After", b"5"),
        (b"Location", b"/api/v1/keys/"),
    ]
    assert relay.public_location("keys", b"http://127.0.0.1:8002") == b"/"
    assert relay.public_location("keys", b"http://127.0.0.1:8002?x=1") == b"?x=1"
    assert relay.public_location("keys", b"http://127.0.0.1:80021/x") == b"http://127.0.0.1:80021/x"
    assert relay.public_location("keys", b"https://example.org/x") == b"https://example.org/x"


# --- the answers ----------------------------------------------------------------------------------


async def test_a_refusal_is_answered_as_problem_json():
    sent: list[dict[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    exchange = Exchange("/api/v1/keys", "req-9", "/api/v1/keys")
    assert (exchange.status, exchange.started) == (500, False)
    await exchange.refuse(send, refusal_of(Decision(LIMITED, LIMIT_HEADERS, retry_after=4)))
    start, body = sent
    assert (exchange.status, exchange.started, start["status"]) == (429, True, 429)
    assert start["headers"] == [
        (b"content-type", b"application/problem+json"),
        (b"content-length", b"%d" % len(body["body"])),
        (b"x-request-id", b"req-9"),
        (b"cache-control", b"no-store"),
        (b"retry-after", b"4"),
        *LIMIT_HEADERS,
    ]
    assert orjson.loads(body["body"]) == {
        "type": "https://openrouter-watcher.dev/problems/rate-limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "The rate limit is exhausted.",
        "instance": "/api/v1/keys",
        "request_id": "req-9",
    }


# --- issue 13: per-client buckets, failed authentications, security headers -----------------------


def test_rate_subject_buckets_ipv6_by_64():
    from owr_gateway.clientip import rate_subject

    assert rate_subject("2001:db8:1:2:aaaa::1") == rate_subject("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert rate_subject("2001:db8:1:3::1") != rate_subject("2001:db8:1:2::1")
    assert rate_subject("::ffff:192.0.2.7") == "192.0.2.7"
    assert rate_subject("192.0.2.7") == "192.0.2.7"
    assert rate_subject("unknown") == "unknown"


async def test_admit_counts_failed_authentications_per_client_bucket():
    state = FakeState()
    admission = Admission(state)  # type: ignore[arg-type]
    keys, jwks = router().match("/api/v1/keys"), router().match("/.well-known/jwks.json")
    with pytest.raises(Refusal) as caught:
        await admission.admit(keys, incoming(("authorization", "Bearer bad")), "2001:db8::1")
    assert caught.value.problem.status == 401
    with pytest.raises(Refusal):
        await admission.admit(keys, incoming(), "2001:db8::2")  # nothing presented: nothing counted
    await admission.admit(jwks, incoming(), "2001:db8::3")
    assert state.limiter.checks == [("auth_failure", "2001:db8::/64", {}), ("anonymous", "2001:db8::/64", {})]

    state.limiter.decision = Decision(LIMITED, LIMIT_HEADERS, retry_after=9)
    with pytest.raises(Refusal) as caught:
        await admission.admit(keys, incoming(("authorization", "Bearer bad")), "1.2.3.4")
    assert (caught.value.problem.status, caught.value.headers[0]) == (429, (b"retry-after", b"9"))


async def test_refusals_carry_the_exchanges_security_headers():
    from owr_gateway.pipeline.problems import API_CSP, SecurityHeaders

    sent: list[dict[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    security = SecurityHeaders(hsts_seconds=600)
    assert (b"strict-transport-security", b"max-age=600; includeSubDomains") in security.api_tls
    assert not [name for name, _ in security.api if name == b"strict-transport-security"]
    assert SecurityHeaders(hsts_seconds=0).api_tls == security.api
    exchange = Exchange("/x", "req-1", "/x", security.api_tls)
    await exchange.refuse(send, Refusal(INVALID_TOKEN_PROBLEM, "no"))
    headers = dict(sent[0]["headers"])
    assert headers[b"content-security-policy"] == API_CSP
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"strict-transport-security"] == b"max-age=600; includeSubDomains"
