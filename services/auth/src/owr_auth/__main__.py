"""`python -m owr_auth`: serve the auth service."""

from owr_auth.app import create_app
from owr_auth.settings import AuthSettings
from owr_shared.serve import run_service
from owr_shared.settings import load_settings

if __name__ == "__main__":
    settings = load_settings(AuthSettings)
    run_service("auth", settings, create_app(settings))
