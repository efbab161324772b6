"""Requests the Celery broker lost, found and sent again.

kombu's Redis transport takes a message with BRPOP before it records it as unacknowledged: a worker killed in that
instant takes the message with it, and nothing would ever answer it. Every request the bridge accepted stays in the
ledger (tasks/ledger.py) until its task has answered. One that is overdue, and is neither waiting in its queue nor held
by a worker (kombu's hash of unacknowledged messages) at two looks a moment apart, was lost: it is sent again under its
own task id, and the once-only guards keep a friend request single. After `ledger_max_resends` it is answered and
dead-lettered instead. On RabbitMQ nothing is lost this way, and the sweep only reports.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery import Celery

from bridge.inbound import INFRASTRUCTURE, send
from contactq.errors import Status
from contactq.settings import Settings
from tasks.ledger import Entry, Ledger
from tasks.metrics import Counters
from tasks.operation import failure_reply
from tasks.outbox import Outbox
from tasks.queues import task_name

log = logging.getLogger(__name__)

# kombu's Redis transport: the unacknowledged messages, and the lists a queue's messages wait in (one per priority).
UNACKED = "unacked"
_PRIORITY_SEP = "\x06\x16"
_PRIORITIES = (3, 6, 9)
_SECOND_LOOK_S = 0.5


def queue_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITIES)]


class Recovery:
    def __init__(self, app: Celery, settings: Settings, ledger: Ledger, outbox: Outbox, counters: Counters) -> None:
        self.app = app
        self.settings = settings
        self.ledger = ledger
        self.outbox = outbox
        self.counters = counters
        redis_broker = settings.broker_url.startswith(("redis://", "rediss://"))
        self.broker = redis.Redis.from_url(settings.broker_url, decode_responses=True) if redis_broker else None

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.ledger_overdue_s / 2):
            try:
                self.sweep()
            except INFRASTRUCTURE as e:
                log.warning("looking for lost requests failed (%s); again later", e)

    def sweep(self) -> list[Entry]:
        """Send again what was lost; returns it."""
        overdue = self.ledger.overdue(self.settings.ledger_overdue_s)
        if not overdue or self.broker is None:
            return []
        lost = self._unheld(overdue)
        if lost:
            # A message between BRPOP and its record as unacknowledged is held a moment later.
            time.sleep(_SECOND_LOOK_S)
            lost = self._unheld(lost)
        for entry in lost:
            if entry.resent >= self.settings.ledger_max_resends:
                self._give_up(entry)
                continue
            log.warning("task %s was lost by the Celery broker; sending it again", entry.task_id)
            send(self.app, entry)
            self.ledger.resent(entry)
            self.counters.add("recovered", entry.op)
        return lost

    def _unheld(self, entries: list[Entry]) -> list[Entry]:
        """The entries whose task is in no queue and held by no worker."""
        assert self.broker is not None
        pipe = self.broker.pipeline(transaction=False)
        queues = sorted({e.queue for e in entries})
        for queue in queues:
            for key in queue_keys(queue):
                pipe.lrange(key, 0, -1)
        pipe.hvals(UNACKED)
        found = pipe.execute()
        # Every message names its task id; a substring is enough to tell whether one is there.
        held = "\n".join(message for messages in found for message in messages)
        return [e for e in entries if e.task_id not in held]

    def _give_up(self, entry: Entry) -> None:
        reason = f"lost by the Celery broker {entry.resent + 1} times; not sent again"
        log.error("task %s %s", entry.task_id, reason)
        reply = failure_reply(entry.op, entry.request, Status.INTERNAL_ERROR, reason)
        if reply.queue_name:
            self.outbox.publish_reply(reply.queue_name, entry.task_id, reply.document())
        self.outbox.dead_letter(task_name(entry.op), entry.queue, entry.request, int(Status.INTERNAL_ERROR), reason)
        self.counters.add("dead_lettered", "bridge")
        self.ledger.settle(entry.task_id)
