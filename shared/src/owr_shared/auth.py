"""FastAPI dependencies that turn a bearer JWT into a verified `Principal`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from owr_shared.errors import Unauthorized
from owr_shared.jwt import JwksVerifier, Principal


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The caller of a user-facing endpoint: a verified access JWT."""
    verifier: JwksVerifier = request.app.state.jwt_verifier
    return await verifier.verify(bearer_token(request), expected_types=("access",))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
