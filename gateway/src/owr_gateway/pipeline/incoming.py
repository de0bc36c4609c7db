"""One pass over the request headers: pick out what the gateway acts on, keep what it forwards as is."""

from __future__ import annotations

from collections.abc import Iterable

from owr_shared.context import new_traceparent, parse_traceparent, sanitize_request_id

# What to do with each request header (names arrive lower-cased from the ASGI server).
_FORWARD, _DROP, _REQUEST_ID, _TRACEPARENT, _TRACESTATE, _AUTHORIZATION = range(6)
_XFF, _XFP, _HOST, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION = range(6, 12)
_REQUEST_HEADER_ACTIONS: dict[bytes, int] = {
    b"x-request-id": _REQUEST_ID,
    b"traceparent": _TRACEPARENT,
    b"tracestate": _TRACESTATE,
    b"authorization": _AUTHORIZATION,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"host": _HOST,
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
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
    request_id_raw = traceparent_raw = tracestate = authorization = None
    forwarded_for = forwarded_proto = host = content_length = connection = None
    chunked = duplicate_authorization = False
    forward: list[tuple[str, str]] = []
    actions = _REQUEST_HEADER_ACTIONS
    for name, value in headers:
        action = actions.get(name, _FORWARD)
        if action == _FORWARD:
            if name.startswith(b"proxy-"):
                continue
            forward.append((name.decode("latin-1"), value.decode("latin-1")))
        elif action == _DROP:
            continue
        elif action == _AUTHORIZATION:
            # Two of them could let the gateway verify one token while the upstream reads the other.
            duplicate_authorization = authorization is not None
            authorization = value
            forward.append(("authorization", value.decode("latin-1")))
        elif action == _REQUEST_ID:
            request_id_raw = value
        elif action == _TRACEPARENT:
            traceparent_raw = value
        elif action == _TRACESTATE:
            tracestate = value if tracestate is None else tracestate + b"," + value
        elif action == _XFF:
            forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
        elif action == _XFP:
            forwarded_proto = value
        elif action == _HOST:
            host = value
        elif action == _CONTENT_LENGTH:
            content_length = value
        elif action == _TRANSFER_ENCODING:
            chunked = True
        elif action == _CONNECTION:
            connection = value if connection is None else connection + b"," + value

    incoming = Incoming()
    incoming.request_id = sanitize_request_id(request_id_raw.decode("latin-1") if request_id_raw else None)
    parsed = parse_traceparent(traceparent_raw.decode("latin-1")) if traceparent_raw else None
    if parsed is not None and traceparent_raw is not None:
        incoming.traceparent = traceparent_raw.decode("latin-1").strip().lower()
        incoming.trace_id = parsed[0]
    else:
        incoming.traceparent = new_traceparent()
        incoming.trace_id = incoming.traceparent[3:35]
        tracestate = None  # belongs to the caller's (invalid) trace
    incoming.tracestate = tracestate
    incoming.authorization = authorization
    incoming.duplicate_authorization = duplicate_authorization
    incoming.forwarded_for = forwarded_for
    incoming.forwarded_proto = forwarded_proto
    incoming.host = host
    incoming.content_length = content_length
    incoming.chunked = chunked
    incoming.connection = connection
    incoming.forward = forward
    return incoming
