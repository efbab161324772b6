"""The one place that names request queues and tasks: `queue.{op}_{SERVER_ID}_{CHILD_ID}`, `contactq.{op}`."""

from __future__ import annotations

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


def celery_queue(name: str) -> Queue:
    """The Celery queue of a name, declared the same way by workers and by every publisher."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def worker_queues(server_id: int, child_ids: list[int]) -> list[str]:
    """Exactly the queues a worker for these children consumes."""
    return [queue_name(op, server_id, child) for child in child_ids for op in (*OPERATIONS, PUSHED_CHANGE)]


def _check(op: str) -> None:
    if op not in OPERATIONS and op != PUSHED_CHANGE:
        raise ValueError(f"unknown operation {op!r}; known: {', '.join(OPERATIONS)}")
