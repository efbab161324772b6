"""Requests the Celery broker lost, found and sent again.

kombu's Redis transport takes a message with BRPOP before it records it as unacknowledged: a worker killed in that
instant takes the message with it, and nothing would ever answer it; Celery also drops a task whose retry it cannot
publish (a Redis out of memory). Every request the bridge accepted stays in the ledger (tasks/ledger.py) until its task
has answered. One that is overdue, and is neither waiting in its queue nor held by a worker (kombu's hash of
unacknowledged messages) at two looks a moment apart, was lost: it is sent again under its own task id, by the one
bridge that claims it, and a copy of a task that has already answered does nothing. After `ledger_max_resends` it is
answered and dead-lettered instead. On RabbitMQ no message is lost this way: the sweep does nothing, and every entry
is settled when its task answers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable

import redis
from celery import Celery

from bridge.inbound import send
from contactq.errors import Status
from contactq.settings import Settings
from tasks import metrics
from tasks.ledger import Answer, Entry, Ledger
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


def task_ids(messages: Iterable[str]) -> set[str]:
    """The task ids of kombu's Redis messages: a queued message, or an unacknowledged [message, exchange, key]."""
    ids = set()
    for raw in messages:
        try:
            doc = json.loads(raw)
            message = doc[0] if isinstance(doc, list) else doc
            ids.add(str(message["headers"]["id"]))
        except (ValueError, TypeError, KeyError, IndexError):
            continue  # not a task of ours
    return ids


class Recovery:
    def __init__(self, app: Celery, settings: Settings, ledger: Ledger, outbox: Outbox, counters: Counters) -> None:
        self.app = app
        self.settings = settings
        self.ledger = ledger
        self.outbox = outbox
        self.counters = counters
        url = str(app.conf.broker_url)  # what Celery uses, whatever set it
        redis_broker = url.startswith(("redis://", "rediss://"))
        self.broker = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10) if redis_broker else None

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.ledger_overdue_s / 2):
            try:
                self.sweep()
            except Exception:
                log.exception("looking for lost requests failed; again later")

    def sweep(self) -> list[Entry]:
        """Send again what was lost; returns it."""
        if self.broker is None:
            return []
        overdue = self.ledger.overdue(self.settings.ledger_overdue_s)
        if not overdue:
            return []
        lost = self._unheld(overdue)
        if lost:
            # A message between BRPOP and its record as unacknowledged is held a moment later.
            time.sleep(_SECOND_LOOK_S)
            lost = self._unheld(lost)
        resent = []
        for entry in lost:
            # Claimed first: a task that answered meanwhile, or another bridge's sweep, wins.
            if not self.ledger.claim_resend(entry):
                continue
            if entry.resent >= self.settings.ledger_max_resends:
                self._give_up(entry)
                continue
            log.warning("task %s was lost by the Celery broker; sending it again", entry.task_id)
            send(self.app, entry)
            self.counters.add("recovered", entry.op)
            resent.append(entry)
        return resent

    def _unheld(self, entries: list[Entry]) -> list[Entry]:
        """The entries whose task is in no queue and held by no worker; the others are marked as seen waiting."""
        assert self.broker is not None
        pipe = self.broker.pipeline(transaction=False)
        for queue in sorted({e.queue for e in entries}):
            for key in queue_keys(queue):
                pipe.lrange(key, 0, -1)
        pipe.hvals(UNACKED)
        held = task_ids(message for messages in pipe.execute() for message in messages)
        self.ledger.seen_waiting([e for e in entries if e.task_id in held])
        return [e for e in entries if e.task_id not in held]

    def _give_up(self, entry: Entry) -> None:
        reason = f"lost by the Celery broker {entry.resent + 1} times; not sent again"
        log.error("task %s %s", entry.task_id, reason)
        reply = failure_reply(entry.op, entry.request, Status.INTERNAL_ERROR, reason)
        self.outbox.dead_letter(task_name(entry.op), entry.queue, entry.request, int(Status.INTERNAL_ERROR), reason)
        # Answered as a task answers, once: a sweep that fails here gives up again, and a task that answered first
        # keeps its answer.
        self.ledger.answer(
            entry.task_id,
            Answer(reply=reply.outbound(entry.task_id), counts=[metrics.field("dead_lettered", "bridge")]),
        )
