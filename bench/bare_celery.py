"""The bare Celery round trip the bridge is measured against: a task that returns its argument, on Celery's defaults
(JSON, prefork), the same Redis broker and result backend as the contact module's workers."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bare", broker=os.environ["CONTACTQ_BROKER_URL"], backend=os.environ["CONTACTQ_RESULT_BACKEND"])
app.conf.task_default_queue = "bench.bare"


@app.task(name="bench.echo")
def echo(value: object) -> object:
    """Return the argument: nothing but Celery's own round trip."""
    return value
