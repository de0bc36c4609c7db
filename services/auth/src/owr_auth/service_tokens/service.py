"""Service tokens: client-credentials issuance, and auth's own tokens for its calls to other services.

Client secrets are compared as SHA-256 digests with `hmac.compare_digest`: equal-length inputs keep
the comparison constant-time whatever the secrets' lengths. An unknown client is compared against a
random digest, so it costs the same as a wrong secret and gets the same answer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

from owr_auth.service_tokens.errors import AudienceNotAllowed, InvalidClient, InvalidScope
from owr_auth.settings import AUTH_CLIENT_ID, AuthSettings, ServiceClient
from owr_auth.signing.keyring import Keyring
from owr_auth.signing.service import ServiceToken, mint_service_token
from owr_shared.logging import get_logger

log = get_logger(__name__)

_UNKNOWN_CLIENT_DIGEST = hashlib.sha256(secrets.token_bytes(32)).digest()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def authenticate_client(clients: Mapping[str, ServiceClient], client_id: str, client_secret: str) -> ServiceClient:
    """The configured client whose secret this is, or `InvalidClient`."""
    client = clients.get(client_id)
    expected = _digest(client.secret.get_secret_value()) if client is not None else _UNKNOWN_CLIENT_DIGEST
    matches = hmac.compare_digest(_digest(client_secret), expected)
    if client is None or not matches:
        # The presented id may be anything (even a pasted secret): it is not logged.
        log.warning("service_token_refused", reason="invalid_client")
        raise InvalidClient()
    return client


def issue(
    settings: AuthSettings,
    keyring: Keyring,
    *,
    client_id: str,
    client_secret: str,
    audience: str,
    scope: str | None,
) -> ServiceToken:
    """Authenticate the client, then sign a token for `audience` with the requested (or all) scopes."""
    client = authenticate_client(settings.service_clients, client_id, client_secret)
    if audience not in client.audiences:
        log.warning("service_token_refused", reason="audience_not_allowed", client_id=client_id, audience=audience)
        raise AudienceNotAllowed()
    requested = frozenset(client.scopes) if scope is None else frozenset(scope.split())
    if not requested or not requested <= client.scopes:
        log.warning("service_token_refused", reason="invalid_scope", client_id=client_id, audience=audience)
        raise InvalidScope()
    token = mint_service_token(keyring, settings, client_id=client_id, audience=audience, scopes=requested)
    log.info(
        "service_token_issued",
        client_id=client_id,
        audience=audience,
        scope=" ".join(token.scopes),
        token_id=token.token_id,
    )
    return token


def own_service_token(keyring: Keyring, settings: AuthSettings, *, audience: str, scopes: Iterable[str]) -> str:
    """A service token with `sub: auth`, minted locally: auth is the issuer, so it needs no credentials."""
    return mint_service_token(keyring, settings, client_id=AUTH_CLIENT_ID, audience=audience, scopes=scopes).token
