"""The bare Celery round trip the bridge is measured against: a task that returns its argument, on Celery's defaults
(JSON, prefork), on the same Redis server as the contact module's workers."""

from __future__ import annotations

from benchenv import BARE_BROKER_URL, BARE_RESULT_BACKEND
from celery import Celery

app = Celery("bare", broker=BARE_BROKER_URL, backend=BARE_RESULT_BACKEND)
app.conf.task_default_queue = "bench.bare"


@app.task(name="bench.echo")
def echo(value: object) -> object:
    """Return the argument: nothing but Celery's own round trip."""
    return value
