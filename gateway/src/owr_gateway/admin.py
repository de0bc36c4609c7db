"""The admin app (its own port, never public): Prometheus metrics and health probes."""

from __future__ import annotations

from starlette.applications import Starlette

from owr_gateway.state import GatewayState
from owr_shared import admin


def create_admin_app(state: GatewayState) -> Starlette:
    """`/metrics`, `/health/live`, `/health/ready`; readiness uses the main app's clients."""
    return admin.create_admin_app(state.readiness)
