"""The RQ worker process: mirrors wsgi.py. One app, the scheduler (a thread of this process,
so nothing outlives a SIGKILL), and the periodic jobs (registered under stable ids, so any
number of workers enqueue each tick once)."""

import logging
import threading

from rq import Queue

from portal import create_app
from portal.queueing import QUEUES, AppWorker, enqueue_periodic

log = logging.getLogger("worker")


def tick_forever(app, stop: threading.Event) -> None:
    last_run: dict = {}
    while not stop.is_set():
        try:
            enqueue_periodic(app, last_run)
        except Exception:  # Redis away for a moment: try again next tick
            log.exception("could not enqueue periodic jobs")
        stop.wait(1.0)


def main() -> None:
    app = create_app()
    if not app.config["REDIS_URL"]:
        raise SystemExit("worker.py needs REDIS_URL; in embedded mode the app runs its own worker")
    connection = app.extensions["redis"]
    stop = threading.Event()
    threading.Thread(target=tick_forever, args=(app, stop), daemon=True).start()
    worker = AppWorker([Queue(name, connection=connection) for name in QUEUES], connection=connection)
    worker.flask_app = app
    try:
        worker.work(with_scheduler=True, logging_level=app.config["LOG_LEVEL"])
    finally:
        stop.set()


if __name__ == "__main__":
    main()
