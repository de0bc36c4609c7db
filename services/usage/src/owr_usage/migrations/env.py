"""Alembic environment of the usage service: the shared runner, filtered to schema `usage`."""

from owr_shared.migrate import run_env
from owr_usage.tables import SCHEMA, metadata

run_env(schema=SCHEMA, target_metadata=metadata)
