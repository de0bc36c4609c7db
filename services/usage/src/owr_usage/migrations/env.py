"""Alembic environment for the usage schema."""

from owr_shared.migrate import run_env
from owr_usage.models import target_metadata

run_env(schema="usage", target_metadata=target_metadata())
