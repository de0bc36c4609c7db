"""`make migrate`: upgrade every service's schema on DATABASE_URL, or on the embedded PostgreSQL."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from owr_shared.migrate import SERVICES_WITH_SCHEMA, upgrade
from tools.devinfra import DATA_DIR, embedded_postgres


def main(argv: list[str]) -> int:
    services = tuple(argv) or SERVICES_WITH_SCHEMA
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres(DATA_DIR / "pg"))
        upgrade(services, database_url=url)
    print(f"migrated: {', '.join(services)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
