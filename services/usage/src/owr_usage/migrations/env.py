"""Alembic environment for the usage schema."""

from owr_shared.migrate import run_env
from owr_usage.models import UsageBase

run_env(schema="usage", target_metadata=UsageBase.metadata)
