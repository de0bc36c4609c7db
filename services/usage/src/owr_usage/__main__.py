"""`python -m owr_usage`: serve the usage service."""

from owr_shared.serve import run_service
from owr_shared.settings import load_settings
from owr_usage.app import create_app
from owr_usage.settings import UsageSettings

if __name__ == "__main__":
    settings = load_settings(UsageSettings)
    run_service("usage", settings, create_app(settings))
