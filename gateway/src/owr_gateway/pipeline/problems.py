"""The gateway's own answers: problem+json of the shared vocabulary, and the refusal the steps raise."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Send

from owr_shared.errors import PAYLOAD_TOO_LARGE, PROBLEM_CONTENT_TYPE, ProblemType, problem_body

Header = tuple[bytes, bytes]

CONTENT_TYPE_PROBLEM: Header = (b"content-type", PROBLEM_CONTENT_TYPE.encode())
NO_STORE: Header = (b"cache-control", b"no-store")
CLOSE: Header = (b"connection", b"close")
WWW_AUTHENTICATE_MISSING: Header = (b"www-authenticate", b"Bearer")
WWW_AUTHENTICATE_INVALID: Header = (b"www-authenticate", b'Bearer error="invalid_token"')


def retry_after(seconds: int) -> Header:
    return (b"retry-after", b"%d" % seconds)


class Refusal(Exception):
    """A step's answer instead of the upstream's: `problem` with this occurrence's detail and headers."""

    def __init__(self, problem: ProblemType, detail: str, headers: Sequence[Header] = ()) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
        self.headers = headers


def too_large(limit: int) -> Refusal:
    # The rest of the body may still be on its way: close rather than read it.
    return Refusal(PAYLOAD_TOO_LARGE, f"The request body exceeds {limit} bytes.", (CLOSE,))


class Exchange:
    """One request's record: what its log line and metrics report, and whether its answer has begun."""

    __slots__ = ("path", "request_id", "rid_header", "route", "started", "status")

    def __init__(self, path: str, request_id: str, route: str) -> None:
        self.path = path
        self.request_id = request_id
        self.rid_header: Header = (b"x-request-id", request_id.encode())
        self.route = route
        self.status = 500  # until an answer says otherwise
        self.started = False

    async def refuse(self, send: Send, refusal: Refusal) -> None:
        """Answer with `refusal` as problem+json, never cached."""
        problem = refusal.problem
        body = problem_body(
            problem.status,
            title=problem.title,
            detail=refusal.detail,
            slug=problem.slug,
            instance=self.path,
            request_id=self.request_id,
        )
        headers = [CONTENT_TYPE_PROBLEM, (b"content-length", b"%d" % len(body)), self.rid_header, NO_STORE]
        headers.extend(refusal.headers)
        self.status = problem.status
        self.started = True
        await send({"type": "http.response.start", "status": problem.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
