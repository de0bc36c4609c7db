"""Path screening: `/internal` in any spelling is hidden, ambiguous spellings are refused.

Upstreams decode a path once and route on the result; an attacker's hope is that the gateway and an
upstream disagree about what a path means.  So anything that could be read two ways (dot segments,
encoded slashes or backslashes, double encoding) is refused, and `/internal` is looked for after
undoing every such trick.
"""

from __future__ import annotations

from urllib.parse import unquote

PATH_OK = 0
PATH_INTERNAL = 404
PATH_MALFORMED = 400

_DOTS = (".", "..")
_MAX_DECODE_ROUNDS = 4


def _resolved_segments(path: str) -> list[str]:
    """Segments of `path` after repeated percent-decoding, `\\`→`/`, and dot-segment removal."""
    decoded = path
    for _ in range(_MAX_DECODE_ROUNDS):
        again = unquote(decoded)
        if again == decoded:
            break
        decoded = again
    stack: list[str] = []
    for segment in decoded.replace("\\", "/").split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if stack:
                stack.pop()
            continue
        stack.append(segment)
    return stack


def is_internal_path(path: str) -> bool:
    """True if `path`, however spelled (case, encoding, dot segments, `//`), lies under `/internal`."""
    segments = _resolved_segments(path)
    if not segments:
        return False
    # Matrix parameters and stray whitespace/control characters do not make it a different name.
    head = segments[0].split(";", 1)[0].strip(" \t\r\n\x00").lower()
    return head == "internal"


def screen_path(path: str, raw_path: bytes) -> int:
    """Classify a request path: PATH_OK, PATH_INTERNAL (answer 404) or PATH_MALFORMED (answer 400).

    `path` is the ASGI (once-decoded) path, `raw_path` the bytes the client sent.
    """
    # Fast path: a plain path with nothing to decode or resolve (nearly every real request).
    if b"%" not in raw_path and "\\" not in path and "//" not in path and "/." not in path:
        if path[:9].lower() == "/internal" and (len(path) == 9 or path[9] in "/;"):
            return PATH_INTERNAL
        return PATH_OK
    if is_internal_path(path):
        return PATH_INTERNAL
    lowered = raw_path.lower()
    if b"%2f" in lowered or b"%5c" in lowered or "\\" in path:
        return PATH_MALFORMED
    if any(segment in _DOTS for segment in path.split("/")):
        return PATH_MALFORMED
    if "%" in path:
        # Double encoding: whatever decodes a second time must not turn into separators or dots.
        decoded = unquote(path)
        if decoded.count("/") != path.count("/") or "\\" in decoded:
            return PATH_MALFORMED
        if any(segment in _DOTS for segment in decoded.split("/")):
            return PATH_MALFORMED
    return PATH_OK
