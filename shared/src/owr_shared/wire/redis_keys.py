"""Redis key names that one process writes and another reads (auth revokes, the gateway refuses)."""

from __future__ import annotations

# An access token issued before this key's value (unix seconds, to the microsecond) is refused.
REVOKED_USER = "owr:revoked:user:"
# An access token whose `sid` (its session: the refresh-token family) is here is refused.
REVOKED_SESSION = "owr:revoked:sid:"
# `{prefix}{workspace_id}:{user_id}`: a token of that member in that workspace issued before this key's
# value (unix seconds, to the microsecond) is refused: the member was removed or their role lowered.
REVOKED_MEMBER = "owr:revoked:member:"


def member_revocation_key(workspace_id: object, user_id: object) -> str:
    """The membership cut-off auth writes and the gateway reads (ids as their canonical text)."""
    return f"{REVOKED_MEMBER}{workspace_id}:{user_id}"


# The gateway's cached introspection of an API token, by the token's HMAC; auth deletes it on revocation.
API_TOKEN_CACHE = "owr:apitoken:"  # noqa: S105 - a key prefix, not a secret
