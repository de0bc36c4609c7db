"""Alembic environment for the keys schema."""

from owr_keys.models import target_metadata
from owr_shared.migrate import run_env

run_env(schema="keys", target_metadata=target_metadata())
