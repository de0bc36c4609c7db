"""Alembic environment of the auth service: the shared runner, filtered to schema `auth`."""

from owr_auth.db import target_metadata
from owr_shared.migrate import run_env

run_env(schema="auth", target_metadata=target_metadata())
