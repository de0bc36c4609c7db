"""The hourly workspace sweep: auth finishes account deletions a peer could not complete at the time,
and erases the rows peers still hold for workspaces auth no longer knows.

auth does the work (`POST /internal/workspaces/sweep`, client credentials in HTTP Basic, scope
`workspaces:sweep`); the worker only calls it, since it is the process that runs crons. Idempotent: a
failed run is simply the next hour's.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
from pydantic import ValidationError

from owr_shared.logging import get_logger
from owr_shared.wire.workspaces import SweepResult
from owr_worker.jobs import job_settings
from owr_worker.metrics import WORKSPACE_SWEEPS
from owr_worker.tracing import job_context, outgoing_headers

# The jobs' logger: every cron logs under one name, as operators' queries expect.
log = get_logger("owr.worker.jobs")
# A sweep calls every peer for every workspace it erases: far longer than one internal call.
SWEEP_TIMEOUT_SECONDS = 120.0


def _basic(client_id: str, secret: str) -> str:
    # aiohttp deprecates `auth=BasicAuth(...)`; the header is the same RFC 7617 credentials.
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


async def sweep_workspaces(ctx: dict[str, Any]) -> dict[str, int]:
    """Ask auth to sweep; the counts it reports (empty when it could not)."""
    with job_context("sweep_workspaces", traceparent=None, request_id=None):
        settings = job_settings(ctx)
        http: aiohttp.ClientSession = ctx["internal_http"]
        secret = settings.service_client_secret.get_secret_value() if settings.service_client_secret else ""
        try:
            async with http.post(
                settings.auth_url.rstrip("/") + "/internal/workspaces/sweep",
                headers={**outgoing_headers(), "Authorization": _basic(settings.service_client_id, secret)},
                timeout=aiohttp.ClientTimeout(total=SWEEP_TIMEOUT_SECONDS),
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            WORKSPACE_SWEEPS.labels("unavailable").inc()
            log.warning("workspace_sweep_unavailable", error_type=type(exc).__name__)
            return {}
        if status != 200:
            WORKSPACE_SWEEPS.labels("unavailable" if status >= 500 else "refused").inc()
            log.warning("workspace_sweep_failed", status=status)
            return {}
        try:
            result = SweepResult.model_validate_json(body)
        except ValidationError:
            WORKSPACE_SWEEPS.labels("unavailable").inc()
            log.warning("workspace_sweep_unreadable")
            return {}
        WORKSPACE_SWEEPS.labels("done").inc()
        log.info("workspace_sweep_done", **result.model_dump())
        return result.model_dump()
