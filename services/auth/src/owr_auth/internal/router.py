"""`/internal/*` of auth: what other services call with their client credentials.

Every other service's internal routes demand a service token; auth's are where those tokens come from,
so each of these demands a configured client's id and secret instead (in the body for a service token,
in HTTP Basic for an introspection). An `Authorization: Bearer` header is ignored. The gateway never
routes `/internal/...`.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response

from owr_auth.api_tokens import service as token_service
from owr_auth.api_tokens.schemas import Introspection, IntrospectionRequest
from owr_auth.dependencies import Cleanup, Sessions, Settings, SigningKeyring
from owr_auth.service_tokens import service as service_token_service
from owr_auth.service_tokens.errors import InvalidClient, InvalidScope
from owr_auth.service_tokens.schemas import ServiceTokenRequest, ServiceTokenResponse
from owr_auth.workspaces import service as workspace_service
from owr_shared.db import DbSession
from owr_shared.schemas import json_response, problem_responses
from owr_shared.wire.workspaces import SweepResult

router = APIRouter(prefix="/internal", tags=["internal"])

INTROSPECT_SCOPE = "tokens:introspect"
SWEEP_SCOPE = "workspaces:sweep"
# Interrupted deletions finished per sweep; the rest wait for the next one.
SWEEP_BATCH = 100
# RFC 6749 §5.1: responses carrying tokens are not stored by any cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/service-tokens",
    response_model=ServiceTokenResponse,
    responses=problem_responses(400, 401, 403, 422),
    summary="Issue a service token (client credentials)",
)
async def issue_service_token(
    body: ServiceTokenRequest, settings: Settings, keyring: SigningKeyring, response: Response
) -> ServiceTokenResponse:
    """A token for calling another service's `/internal/...` endpoints, as the client, for `audience`."""
    token = service_token_service.issue(
        settings,
        keyring,
        client_id=body.client_id,
        client_secret=body.client_secret,
        audience=body.audience,
        scope=body.scope,
    )
    response.headers.update(NO_STORE)
    return ServiceTokenResponse(access_token=token.token, expires_in=token.expires_in, scope=" ".join(token.scopes))


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient()
    try:
        client_id, sep, secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient() from None
    if not sep:
        raise InvalidClient()
    return client_id, secret


@router.post(
    "/tokens/introspect",
    response_model=Introspection,
    responses=problem_responses(400, 401, 403, 422),
    summary="Introspect an API token (RFC 7662 style; client credentials in HTTP Basic)",
)
async def introspect(
    body: IntrospectionRequest, request: Request, session: DbSession, settings: Settings, keyring: SigningKeyring
) -> Response:
    """`{active: false}` for an unknown, revoked or expired token; else the caller and a short-lived JWT."""
    client = service_token_service.authenticate_client(settings.service_clients, *_basic_credentials(request))
    if INTROSPECT_SCOPE not in client.scopes:
        raise InvalidScope()
    answer = await token_service.introspect(session, keyring, settings, token=body.token)
    return json_response(answer, headers=NO_STORE)


@router.post(
    "/workspaces/sweep",
    response_model=SweepResult,
    responses=problem_responses(400, 401, 403, 503),
    summary="Finish interrupted workspace deletions and erase orphans (client credentials in HTTP Basic)",
)
async def sweep_workspaces(request: Request, settings: Settings, sessions: Sessions, cleanup: Cleanup) -> Response:
    """Idempotent. 503 when a peer cannot be reached: what was done stays done, the next sweep goes on."""
    client = service_token_service.authenticate_client(settings.service_clients, *_basic_credentials(request))
    if SWEEP_SCOPE not in client.scopes:
        raise InvalidScope()
    return json_response(await workspace_service.sweep(sessions, cleanup, batch=SWEEP_BATCH))
