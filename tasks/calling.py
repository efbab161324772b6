"""How Python code calls an operation: the right queue from (server, child) or from a uin, then send_task."""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult

from contactq.errors import NotOnline
from tasks.app import app, masked_reprs, runtime
from tasks.queues import queue_name, task_name


def queue_for(op: str, *, server_id: int | None = None, child_id: int | None = None, uin: str | None = None) -> str:
    """`queue.{op}_{server}_{child}`, given the server and child, or the uin of an account the registry knows."""
    if server_id is not None and child_id is not None:
        return queue_name(op, server_id, child_id)
    if uin is None:
        raise ValueError("name either server_id and child_id, or uin")
    session = runtime().registry.lookup(uin)
    if session is None:
        raise NotOnline(f"no worker has registered uin {uin}")
    return queue_name(op, session.server_id, session.child_id)


def submit(
    op: str,
    request: dict[str, Any],
    *,
    server_id: int | None = None,
    child_id: int | None = None,
    task_id: str | None = None,
) -> AsyncResult[Any]:
    """Send a request to its operation's queue; routed by the request's uin unless server and child are given."""
    name = queue_for(op, server_id=server_id, child_id=child_id, uin=str(request.get("uin", "")))
    args = [request]
    options: dict[str, Any] = {"queue": name, "task_id": task_id, **masked_reprs(args, None)}
    return app.send_task(task_name(op), args=args, **options)
