"""Alembic environment of the keys service: the shared runner, filtered to schema `keys`."""

from owr_keys.tables import SCHEMA, metadata
from owr_shared.migrate import run_env

run_env(schema=SCHEMA, target_metadata=metadata)
