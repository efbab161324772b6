"""`contactq`: start a worker or Flower from the one settings object, or run the demo."""

from __future__ import annotations

import os
import sys

import click

from contactq.settings import Settings


def _celery(*args: str, env: dict[str, str] | None = None) -> None:
    os.environ.update(env or {})
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "contactq.tasks", *args])


@click.group()
def main() -> None:
    """The WeChat contact module on Celery."""


@main.command()
@click.option("--loglevel", default="info", show_default=True)
def worker(loglevel: str) -> None:
    """A worker for CONTACTQ_SERVER_ID and CONTACTQ_CHILD_IDS, consuming exactly their queues."""
    s = Settings()
    name = f"contactq-{s.server_id}-{'-'.join(map(str, s.child_ids))}@%h"
    _celery("worker", "-n", name, "-l", loglevel)


@main.command()
def flower() -> None:
    """Flower on CONTACTQ_FLOWER_ADDRESS:CONTACTQ_FLOWER_PORT, behind basic auth from the settings."""
    s = Settings()
    # Through the environment, so that the password is not on the command line for `ps` to show.
    auth = {"FLOWER_BASIC_AUTH": f"{s.flower_user}:{s.flower_password}"}
    _celery("flower", f"--address={s.flower_address}", f"--port={s.flower_port}", env=auth)


@main.command()
def bridge() -> None:
    """The ActiveMQ bridge for CONTACTQ_SERVERS: requests into Celery, replies and events back out."""
    import logging

    from contactq.bridge.service import Bridge
    from contactq.tasks import app, settings

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/%(threadName)s] %(message)s")
    Bridge(app, settings).run()


@main.command()
def metrics() -> None:
    """Prometheus metrics on CONTACTQ_METRICS_ADDRESS:CONTACTQ_METRICS_PORT (/metrics)."""
    from contactq.tasks import app, settings
    from contactq.tasks.metrics import serve

    serve(app, settings)


@main.command()
def demo() -> None:
    """Perform every operation once through apply_async, printing each reply and event."""
    from contactq.demo import run

    run()


if __name__ == "__main__":
    main()
