"""Redis key names that one process writes and another reads (auth revokes, the gateway refuses)."""

from __future__ import annotations

# An access token issued before this key's value (unix seconds, to the microsecond) is refused.
REVOKED_USER = "owr:revoked:user:"
# An access token whose `sid` (its session: the refresh-token family) is here is refused.
REVOKED_SESSION = "owr:revoked:sid:"
# The gateway's cached introspection of an API token, by the token's HMAC; auth deletes it on revocation.
API_TOKEN_CACHE = "owr:apitoken:"  # noqa: S105 - a key prefix, not a secret
