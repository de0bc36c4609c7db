"""Sort indexes of `daily_usage`: one per sort the web app's /stats asks for (cost, requests, tokens), each
in the full page order (workspace, sort key, day, key, model, provider), so a page sorted by it is an index
scan that stops after its rows, in either direction, and a cursor's position is an index condition. A row
without counts sorts as -1 (the first ascending, the last descending), the same expression the queries use.
"""

from alembic import op

revision: str = "0006_usage"
down_revision: str | None = "0005_usage"

_TIE = "day, key_id, model, provider"
SORT_INDEXES = {
    "ix_daily_usage_sort_cost": "cost",
    "ix_daily_usage_sort_requests": "(COALESCE(requests, -1))",
    "ix_daily_usage_sort_tokens": "(COALESCE(prompt_tokens + completion_tokens, -1))",
}


def upgrade() -> None:
    for name, key in SORT_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON usage.daily_usage (workspace_id, {key}, {_TIE})")


def downgrade() -> None:
    for name in SORT_INDEXES:
        op.execute(f"DROP INDEX usage.{name}")
