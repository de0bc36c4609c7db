"""`POST /internal/service-tokens`: client credentials for a short-lived service token.

It takes credentials, not a bearer token; an `Authorization` header is ignored. The gateway never
routes `/internal/...`.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from owr_auth.dependencies import Settings, SigningKeyring
from owr_auth.service_tokens import service as service_token_service
from owr_auth.service_tokens.schemas import ServiceTokenRequest, ServiceTokenResponse
from owr_shared.schemas import problem_responses

router = APIRouter(prefix="/internal", tags=["internal"])


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
    # RFC 6749 §5.1: responses carrying tokens are not stored by any cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return ServiceTokenResponse(access_token=token.token, expires_in=token.expires_in, scope=" ".join(token.scopes))
