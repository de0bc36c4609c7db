"""Alembic environment for the keys schema."""

from owr_keys.models import KeysBase
from owr_shared.migrate import run_env

run_env(schema="keys", target_metadata=KeysBase.metadata)
