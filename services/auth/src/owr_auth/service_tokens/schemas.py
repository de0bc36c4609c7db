"""Service-token request and response bodies: the shared wire contract, `owr_shared.wire.auth`."""

from __future__ import annotations

from owr_shared.wire.auth import ServiceTokenRequest, ServiceTokenResponse

__all__ = ["ServiceTokenRequest", "ServiceTokenResponse"]
