"""One pass over the request headers: pick out what the gateway acts on, keep what it forwards as is."""

from __future__ import annotations

from collections.abc import Iterable

from owr_shared.context import new_traceparent, parse_traceparent, sanitize_request_id

# What to do with each request header (names arrive lower-cased from the ASGI server): pass it on,
# drop it, keep its last value, join its values (lists), or the two the gateway reads itself.
_FORWARD, _DROP, _LAST, _JOINED, _AUTHORIZATION, _TRANSFER_ENCODING = range(6)
_REQUEST_HEADER_ACTIONS: dict[bytes, int] = {
    b"x-request-id": _LAST,
    b"traceparent": _LAST,
    b"x-forwarded-proto": _LAST,
    b"host": _LAST,
    b"content-length": _LAST,
    b"tracestate": _JOINED,
    b"x-forwarded-for": _JOINED,
    b"connection": _JOINED,
    b"authorization": _AUTHORIZATION,
    b"transfer-encoding": _TRANSFER_ENCODING,
    # Hop-by-hop (RFC 9110 §7.6.1) plus what the gateway itself decides for upstreams.
    b"keep-alive": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
    b"upgrade": _DROP,
    b"expect": _DROP,
    b"x-forwarded-host": _DROP,
    b"x-forwarded-port": _DROP,
    b"x-real-ip": _DROP,
    b"forwarded": _DROP,
}


class Incoming:
    """The request headers as the later steps need them; `forward` holds the ones passed on unchanged.

    The request id and trace context are settled here: the caller's when valid, else new ones.
    """

    __slots__ = (
        "authorization",
        "chunked",
        "connection",
        "content_length",
        "duplicate_authorization",
        "forward",
        "forwarded_for",
        "forwarded_proto",
        "host",
        "request_id",
        "trace_id",
        "traceparent",
        "tracestate",
    )

    authorization: bytes | None
    chunked: bool
    connection: bytes | None
    content_length: bytes | None
    duplicate_authorization: bool
    forward: list[tuple[str, str]]
    forwarded_for: bytes | None
    forwarded_proto: bytes | None
    host: bytes | None
    request_id: str
    trace_id: str
    traceparent: str
    tracestate: bytes | None


def read_headers(headers: Iterable[tuple[bytes, bytes]]) -> Incoming:
    picked: dict[bytes, bytes] = {}
    authorization = None
    chunked = duplicate_authorization = False
    forward: list[tuple[str, str]] = []
    actions = _REQUEST_HEADER_ACTIONS
    for name, value in headers:
        action = actions.get(name, _FORWARD)
        if action == _FORWARD:
            if not name.startswith(b"proxy-"):
                forward.append((name.decode("latin-1"), value.decode("latin-1")))
        elif action == _LAST:
            picked[name] = value
        elif action == _JOINED:
            earlier = picked.get(name)
            picked[name] = value if earlier is None else earlier + b"," + value
        elif action == _AUTHORIZATION:
            # Two of them could let the gateway verify one token while the upstream reads the other.
            duplicate_authorization = authorization is not None
            authorization = value
            forward.append(("authorization", value.decode("latin-1")))
        elif action == _TRANSFER_ENCODING:
            chunked = True

    get = picked.get
    incoming = Incoming()
    request_id = get(b"x-request-id")
    incoming.request_id = sanitize_request_id(request_id.decode("latin-1") if request_id else None)
    traceparent = get(b"traceparent")
    parsed = parse_traceparent(traceparent.decode("latin-1")) if traceparent else None
    if parsed is not None and traceparent is not None:
        incoming.traceparent = traceparent.decode("latin-1").strip().lower()
        incoming.trace_id = parsed[0]
        incoming.tracestate = get(b"tracestate")
    else:
        incoming.traceparent = new_traceparent()
        incoming.trace_id = incoming.traceparent[3:35]
        incoming.tracestate = None  # belongs to the caller's (invalid) trace
    incoming.authorization = authorization
    incoming.duplicate_authorization = duplicate_authorization
    incoming.forwarded_for = get(b"x-forwarded-for")
    incoming.forwarded_proto = get(b"x-forwarded-proto")
    incoming.host = get(b"host")
    incoming.content_length = get(b"content-length")
    incoming.chunked = chunked
    incoming.connection = get(b"connection")
    incoming.forward = forward
    return incoming
