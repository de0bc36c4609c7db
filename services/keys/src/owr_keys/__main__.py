"""`python -m owr_keys`: serve the keys service."""

from owr_keys.app import create_app
from owr_keys.settings import KeysSettings
from owr_shared.serve import run_service
from owr_shared.settings import load_settings

if __name__ == "__main__":
    settings = load_settings(KeysSettings)
    run_service("keys", settings, create_app(settings))
