"""Alembic environment of the auth service: the shared runner, filtered to schema `auth`."""

from owr_auth.tables import SCHEMA, metadata
from owr_shared.migrate import run_env

run_env(schema=SCHEMA, target_metadata=metadata)
