"""`GET /.well-known/jwks.json`: the public keys that verify access tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from owr_auth.dependencies import SigningKeyring
from owr_auth.signing.schemas import JWKS

router = APIRouter(tags=["signing"])

# Verifiers cache the set for a few minutes; a new `kid` makes them refetch anyway.
JWKS_CACHE_CONTROL = "public, max-age=300"


@router.get("/.well-known/jwks.json", response_model=JWKS, summary="Public signing keys (JWKS)")
async def jwks(keyring: SigningKeyring, response: Response) -> JWKS:
    """The active and retired public keys, as a JSON Web Key Set."""
    response.headers["Cache-Control"] = JWKS_CACHE_CONTROL
    return JWKS.model_validate(keyring.jwks())
