"""The gateway's own answers: problem+json of the shared vocabulary, and the refusal the steps raise."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Send

from owr_shared.errors import PAYLOAD_TOO_LARGE, PROBLEM_CONTENT_TYPE, ProblemType, problem_body
from owr_shared.middleware import PAGE_SECURITY_HEADERS

Header = tuple[bytes, bytes]

CONTENT_TYPE_PROBLEM: Header = (b"content-type", PROBLEM_CONTENT_TYPE.encode())
NO_STORE: Header = (b"cache-control", b"no-store")
CLOSE: Header = (b"connection", b"close")
WWW_AUTHENTICATE_MISSING: Header = (b"www-authenticate", b"Bearer")
WWW_AUTHENTICATE_INVALID: Header = (b"www-authenticate", b'Bearer error="invalid_token"')


# OWASP Secure Headers: what every answer carries. The API serves JSON only, so its policy allows
# nothing at all; the docs page loads its own scripts and styles (Swagger UI) from this origin.
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_COMMON_SECURITY: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
SECURITY_HEADER_NAMES = frozenset(
    {b"content-security-policy", b"strict-transport-security", *(name for name, _ in _COMMON_SECURITY)}
)


class SecurityHeaders:
    """The security headers of an answer, precomputed for each case: API, docs or web, over TLS or not.

    Strict-Transport-Security only over TLS (RFC 6797 §7.2: a browser ignores it over plain HTTP).
    """

    __slots__ = ("api", "api_tls", "docs", "docs_tls", "web", "web_tls")

    def __init__(self, hsts_seconds: int) -> None:
        hsts: tuple[Header, ...] = ()
        if hsts_seconds > 0:
            hsts = ((b"strict-transport-security", b"max-age=%d; includeSubDomains" % hsts_seconds),)
        self.api = (*_COMMON_SECURITY, (b"content-security-policy", API_CSP))
        self.docs = (*_COMMON_SECURITY, (b"content-security-policy", DOCS_CSP))
        self.api_tls = (*self.api, *hsts)
        self.docs_tls = (*self.docs, *hsts)
        # Pages may be linked to from elsewhere, so the referrer is this origin only, never a full URL.
        self.web = PAGE_SECURITY_HEADERS
        self.web_tls = (*self.web, *hsts)


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

    __slots__ = ("path", "request_id", "rid_header", "route", "security", "started", "status")

    def __init__(self, path: str, request_id: str, route: str, security: tuple[Header, ...] = ()) -> None:
        self.path = path
        self.security = security  # the security headers every answer to this request carries
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
        headers.extend(self.security)
        self.status = problem.status
        self.started = True
        await send({"type": "http.response.start", "status": problem.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
