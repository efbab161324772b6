"""Requests from ActiveMQ into Celery: decode, validate, route to the child's queue, and only then acknowledge."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from bridge.decode import decode_request
from contactq.errors import InvalidRequest, NotOnline, Status, StoreUnavailable
from contactq.settings import Settings
from tasks.app import import_operations, masked_reprs
from tasks.ledger import Entry, Ledger
from tasks.messages import Reply, mask, parse_request
from tasks.operation import SPECS, failure_reply
from tasks.queues import parse_request_queue, queue_name, task_name
from tasks.store import AccountRegistry

log = logging.getLogger(__name__)


def send(app: Celery, entry: Entry) -> None:
    """The request's task, under the request's id, to its child's queue."""
    args = [entry.request]
    # No result subscription: the reply goes back through ActiveMQ, and a long-lived sender that subscribed to every
    # task's result would pile up subscriptions in Redis.
    options: dict[str, Any] = {
        "queue": entry.queue,
        "task_id": entry.task_id,
        "ignore_result": True,
        **masked_reprs(args, None),
    }
    app.send_task(task_name(entry.op), args=args, **options)


# What makes the bridge leave a message unacknowledged and reconnect: Redis or the Celery broker is not there.
INFRASTRUCTURE = (redis.RedisError, OperationalError, StoreUnavailable, OSError)


@dataclass(frozen=True)
class Accepted:
    task_id: str
    queue: str
    again: bool = False  # ActiveMQ delivered it again after its task was already sent


@dataclass(frozen=True)
class Refused:
    """A message that will not become a task: answered where it names a reply queue, and dead-lettered."""

    status: Status
    reason: str
    request: dict[str, Any] | None
    op: str | None = None  # the operation of the queue it came on, when that is known

    def reply(self) -> Reply | None:
        """The error reply, with the operation's result fields empty; None when there is no request to answer."""
        if self.request is None:
            return None
        return failure_reply(self.op, self.request, self.status, self.reason)


class Inbound:
    def __init__(self, app: Celery, settings: Settings, registry: AccountRegistry, store: redis.Redis) -> None:
        self.app = app
        self.settings = settings
        self.registry = registry
        self.ledger = Ledger(store, settings)
        import_operations()  # the request models it validates with

    def handle(self, destination: str, headers: dict[str, str], body: bytes) -> Accepted | Refused:
        """Send the request a message carries to its task.

        Only the Celery broker or Redis being unreachable raises (the message is then not acknowledged); whatever
        the message itself is, it is accepted or refused.
        """
        request: dict[str, Any] | None = None
        op: str | None = None
        try:
            name = destination.removeprefix("/queue/")
            where = parse_request_queue(name)
            if where is None or where.server_id not in self.settings.servers:
                raise InvalidRequest(f"{name} is not a request queue of this bridge")
            op = where.op
            request = decode_request(body, headers, self.settings.bridge_max_message_bytes)
            parsed = parse_request(SPECS[where.op].model, request)
            child = where.child_id if where.child_id is not None else self._child_of(parsed.uin, where.server_id)
            queue = queue_name(where.op, where.server_id, child)
            task_id = headers.get("message-id") or str(uuid.uuid4())
            # A message whose acknowledgement was lost comes again, maybe to another bridge at the same moment: its
            # task is sent by whoever enters it first, once.
            entry = Entry(task_id=task_id, op=where.op, queue=queue, request=request)
            if not self.ledger.accept(entry):
                return Accepted(task_id, queue, again=True)
            try:
                send(self.app, entry)
            except BaseException:
                # Not sent: the redelivery sends it.
                self.ledger.forget(task_id)
                raise
            return Accepted(task_id, queue)
        except (InvalidRequest, NotOnline) as e:
            log.warning("refused a message on %s: %s", destination, mask(e.message))
            return Refused(e.status, e.message, request, op)
        except INFRASTRUCTURE:
            raise
        except Exception as e:
            # A defect of ours meeting this message: refused and kept, so that one message cannot stall the bridge.
            log.exception("refused a message on %s", destination)
            return Refused(Status.INTERNAL_ERROR, f"internal error: {type(e).__name__}", request, op)

    def _child_of(self, uin: str, server_id: int) -> int:
        session = self.registry.lookup(uin)
        if session is None or session.server_id != server_id:
            raise NotOnline(f"uin {uin} is not logged in on server {server_id}")
        return session.child_id
