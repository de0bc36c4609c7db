"""`python -m owr_worker`: run the ARQ worker with its health and metrics server."""

from owr_shared.settings import load_settings
from owr_worker.settings import WorkerSettings
from owr_worker.worker import main

if __name__ == "__main__":
    main(load_settings(WorkerSettings))
