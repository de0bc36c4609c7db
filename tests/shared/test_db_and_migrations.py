import pytest
from sqlalchemy import text

from owr_shared.db import asyncpg_url


def test_asyncpg_url_conversion():
    assert asyncpg_url("postgresql://u@h:5432/d") == "postgresql+asyncpg://u@h:5432/d"
    assert asyncpg_url("postgres://u@h/d?sslmode=require") == "postgresql+asyncpg://u@h/d?ssl=require"
    assert "host=%2Ftmp%2Fpg" in asyncpg_url("postgresql://u@/d?host=/tmp/pg")
    with pytest.raises(ValueError, match="postgresql"):
        asyncpg_url("mysql://u@h/d")


async def test_each_service_has_its_schema_and_version_table_inside_it(db_session):
    rows = (
        await db_session.execute(
            text(
                "SELECT table_schema FROM information_schema.tables "
                "WHERE table_name = 'alembic_version' ORDER BY table_schema"
            )
        )
    ).scalars()
    assert list(rows) == ["auth", "keys", "usage"]
    public = (
        await db_session.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"))
    ).scalar_one()
    assert public == 0
