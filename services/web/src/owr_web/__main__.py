"""`python -m owr_web`: serve the web dashboard."""

from owr_shared.serve import run_service
from owr_shared.settings import load_settings
from owr_web.app import create_app
from owr_web.settings import WebSettings

if __name__ == "__main__":
    settings = load_settings(WebSettings)
    run_service("web", settings, create_app(settings))
