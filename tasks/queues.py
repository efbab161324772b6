"""The one place that names request queues and tasks: `queue.{op}_{SERVER_ID}_{CHILD_ID}`, `contactq.{op}`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kombu import Exchange, Queue

OPERATIONS = (
    "getContact",
    "searchContact",
    "addContact",
    "addNew",
    "syncContact",
    "modifyName",
    "addChatRoomContact",
)
# Changes WeChat pushes to an account are handled on the account's own child, like a request.
PUSHED_CHANGE = "pushedChange"


def task_name(op: str) -> str:
    _check(op)
    return f"contactq.{op}"


def queue_name(op: str, server_id: int, child_id: int) -> str:
    _check(op)
    return f"queue.{op}_{server_id}_{child_id}"


def server_queue_name(op: str, server_id: int) -> str:
    """The seed's `queue.{op}_{SERVER_ID}`: the bridge routes it to the child that hosts the request's uin."""
    _check(op)
    return f"queue.{op}_{server_id}"


def celery_queue(name: str) -> Queue:
    """The Celery queue of a name, declared the same way by workers and by every publisher."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def worker_queues(server_id: int, child_ids: list[int]) -> list[str]:
    """Exactly the queues a worker for these children consumes."""
    return [queue_name(op, server_id, child) for child in child_ids for op in (*OPERATIONS, PUSHED_CHANGE)]


@dataclass(frozen=True)
class RequestQueue:
    """Where a request was sent; `child_id` is None for `queue.{op}_{SERVER_ID}`, routed by the request's uin."""

    op: str
    server_id: int
    child_id: int | None


# queue.{op}_{S}_{C}, and the seed's own spellings: queue.{op}_{S} and queue.addChatRoomContact{S}_{C}.
_REQUEST_QUEUE = re.compile(r"^queue\.(?P<op>[A-Za-z]+?)(?P<sep>_?)(?P<server>\d+)(?:_(?P<child>\d+))?$")


def parse_request_queue(name: str) -> RequestQueue | None:
    """The operation, server and child a request queue names, in any spelling the seed uses; None if none."""
    found = _REQUEST_QUEUE.match(name)
    if found is None or found["op"] not in OPERATIONS:
        return None
    child = int(found["child"]) if found["child"] else None
    if not found["sep"] and (found["op"] != "addChatRoomContact" or child is None):
        return None
    return RequestQueue(found["op"], int(found["server"]), child)


# A reply queue: a plain queue name, bounded. Not composite (`a,b`), not prefixed (`queue://`, `topic://`, `/topic/`).
_PLAIN_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# Broker queues no reply may go to: dead-letter queues and ActiveMQ's own.
_RESERVED_PREFIXES = ("DLQ.", "ActiveMQ.")


def reply_queue_problem(name: str) -> str | None:
    """Why `name` may not be a request's `queueName`, or None when it may."""
    if not _PLAIN_QUEUE.fullmatch(name):
        return "queueName must be a plain queue name: 1 to 200 letters, digits, '.', '_' or '-'"
    if name.startswith(_RESERVED_PREFIXES):
        return f"queueName may not name a dead-letter or broker queue ({name})"
    if parse_request_queue(name) is not None:
        return f"queueName may not name a request queue ({name})"
    return None


def activemq_request_queues(server_id: int, child_ids: list[int]) -> list[str]:
    """Every queue a Java producer may send this server's requests to."""
    names = [queue_name(op, server_id, child) for child in child_ids for op in OPERATIONS]
    names += [server_queue_name(op, server_id) for op in OPERATIONS]
    names += [f"queue.addChatRoomContact{server_id}_{child}" for child in child_ids]
    return names


def _check(op: str) -> None:
    if op not in OPERATIONS and op != PUSHED_CHANGE:
        raise ValueError(f"unknown operation {op!r}; known: {', '.join(OPERATIONS)}")
