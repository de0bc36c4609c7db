"""`/api/v1/alert-rules`: the workspace's switches and parameters of the built-in rules."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import AlertsReader, AlertsWriter
from owr_usage.rules import service as rules
from owr_usage.rules.schemas import RulesUpdate, RulesView

router = APIRouter(prefix="/api/v1/alert-rules", tags=["alerts"])


@router.get("", response_model=RulesView, responses=problem_responses(401, 403, 422), summary="The built-in rules")
async def get_rules(user: AlertsReader, session: DbSession) -> Response:
    """Every built-in rule with its switch and parameters (a rule never set is on, with its defaults):
    `key.invalid`, `key.expiring` (`days`), `key.limit_threshold_crossed` (`percent`), `account.balance_low`
    (`amount_usd`), `account.runway_low` (`days`), `sync.failing` (`hours`; its recovery is `sync.recovered`),
    `key.anomaly` (`min_score`, `min_usd`), `price.drift` (`min_drift_pct`)."""
    return json_response(await rules.view(session, user.workspace_id))


@router.put(
    "",
    response_model=RulesView,
    responses=problem_responses(400, 401, 403, 422),
    summary="Switch built-in rules on or off and set their parameters",
)
async def put_rules(body: RulesUpdate, user: AlertsWriter, session: DbSession) -> Response:
    """The rules listed take the switch and parameters given (parameters left out take their defaults); the
    others keep theirs. The answer lists every rule. A rule switched off raises nothing."""
    return json_response(await rules.put(session, user.workspace_id, body))
