"""`/internal/*` of auth: what other services call with their client credentials.

Every other service's internal routes demand a service token; auth's are where those tokens come from,
so each of these demands a configured client's id and secret instead (in the body for a service token,
in HTTP Basic for an introspection). An `Authorization: Bearer` header is ignored. The gateway never
routes `/internal/...`.
"""

from __future__ import annotations

import base64
import binascii
import uuid

from fastapi import APIRouter, Query, Request, Response, status

from owr_auth.api_tokens import service as token_service
from owr_auth.api_tokens.schemas import Introspection, IntrospectionRequest
from owr_auth.dependencies import Cleanup, Clock, Sessions, Settings, SigningKeyring
from owr_auth.mail import service as mail_service
from owr_auth.mail.errors import MailGone
from owr_auth.service_tokens import service as service_token_service
from owr_auth.service_tokens.errors import InvalidClient, InvalidScope
from owr_auth.service_tokens.schemas import ServiceTokenRequest, ServiceTokenResponse
from owr_auth.workspaces import service as workspace_service
from owr_shared.db import DbSession
from owr_shared.errors import render_problem
from owr_shared.schemas import json_response, problem_responses
from owr_shared.wire.mail import MailFailure, PendingMail, RenderedMail
from owr_shared.wire.workspaces import SweepResult

router = APIRouter(prefix="/internal", tags=["internal"])

INTROSPECT_SCOPE = "tokens:introspect"
SWEEP_SCOPE = "workspaces:sweep"
MAIL_SCOPE = "mail:render"
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


def _require_client(request: Request, settings: Settings, scope: str) -> None:
    """The request's HTTP Basic credentials are a configured client's, and the client holds `scope`."""
    client = service_token_service.authenticate_client(settings.service_clients, *_basic_credentials(request))
    if scope not in client.scopes:
        raise InvalidScope()


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
    _require_client(request, settings, INTROSPECT_SCOPE)
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
    _require_client(request, settings, SWEEP_SCOPE)
    return json_response(await workspace_service.sweep(sessions, cleanup, batch=SWEEP_BATCH))


@router.post(
    "/mail/{mail_id}/render",
    response_model=RenderedMail,
    responses=problem_responses(400, 401, 403, 410, 422),
    summary="Render a queued email, minting its one-time link (client credentials in HTTP Basic)",
)
async def render_mail(
    mail_id: uuid.UUID, request: Request, session: DbSession, settings: Settings, clock: Clock
) -> Response:
    """The message to send; 410 when the mail is not to be sent (sent, failed, or no longer wanted): drop it.
    Each render mints a new link and discards the mail's unused earlier one."""
    _require_client(request, settings, MAIL_SCOPE)
    rendered = await mail_service.render(session, settings, mail_id, clock())
    if rendered is None:
        # Returned, not raised: the mail's cancellation must be committed along with the refusal.
        return render_problem(MailGone(), request)
    return json_response(rendered, headers=NO_STORE)


@router.post(
    "/mail/{mail_id}/sent",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Report a mail sent (client credentials in HTTP Basic)",
)
async def mail_sent(mail_id: uuid.UUID, request: Request, session: DbSession, settings: Settings, clock: Clock) -> None:
    """Idempotent: a mail reported twice, or after another outcome, stays as it is."""
    _require_client(request, settings, MAIL_SCOPE)
    await mail_service.mark_sent(session, mail_id, clock())


@router.post(
    "/mail/{mail_id}/failed",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Report a mail given up (client credentials in HTTP Basic)",
)
async def mail_failed(
    body: MailFailure, mail_id: uuid.UUID, request: Request, session: DbSession, settings: Settings, clock: Clock
) -> None:
    """The mail's unused link is discarded. Idempotent, like `sent`."""
    _require_client(request, settings, MAIL_SCOPE)
    await mail_service.mark_failed(session, mail_id, body.reason, clock())


@router.get(
    "/mail/pending",
    response_model=PendingMail,
    responses=problem_responses(400, 401, 403, 422),
    summary="Mails still unsent minutes after they were queued (client credentials in HTTP Basic)",
)
async def pending_mail(
    request: Request, session: DbSession, settings: Settings, clock: Clock, limit: int = Query(500, ge=1, le=1000)
) -> Response:
    """Pending mails queued between a day and two minutes ago, oldest first: their job may have been lost
    (Redis was away when auth queued it), so the worker's cron queues them again."""
    _require_client(request, settings, MAIL_SCOPE)
    return json_response(PendingMail(ids=await mail_service.pending(session, clock(), limit=limit)))
