"""A service's settings as its tests build them: the test environment, the session's database and Redis."""

from __future__ import annotations

from typing import Any, TypeVar

from owr_shared.settings import BaseServiceSettings

S = TypeVar("S", bound=BaseServiceSettings)


def service_settings(
    cls: type[S], database_url: str, redis_url: str, defaults: dict[str, Any], overrides: dict[str, Any]
) -> S:
    """`cls` with the suite's `defaults`, then the test's `overrides` (both named as `cls` names them)."""
    values = {"OWR_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url, **defaults, **overrides}
    return cls(**values)
