"""`python -m owr_auth`: serve the auth service."""

from __future__ import annotations

from owr_auth.app import create_app
from owr_auth.settings import AuthSettings
from owr_shared.logging import configure_logging
from owr_shared.serve import serve
from owr_shared.settings import load_settings


def main() -> None:
    settings = load_settings(AuthSettings)
    configure_logging("auth", settings.log_level, settings.log_json)
    serve(
        create_app(settings), host=settings.host, port=settings.port, forwarded_allow_ips=settings.forwarded_allow_ips
    )


if __name__ == "__main__":
    main()
