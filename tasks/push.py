"""Carries the changes WeChat pushes to an account into Celery, where the pushedChange task handles them."""

from __future__ import annotations

import logging
import threading

from celery import Celery

from protocol.client import WeChatClient
from tasks.queues import PUSHED_CHANGE, queue_name, task_name

log = logging.getLogger(__name__)
_ERROR_PAUSE_S = 1.0


class PushForwarder:
    """One child's pushed changes, each sent as a task before WeChat is told it was received."""

    def __init__(
        self, app: Celery, client: WeChatClient, child_id: int, consumer: str, server_id: int, block_ms: int
    ) -> None:
        self.app = app
        self.client = client
        self.child_id = child_id
        self.consumer = consumer
        self.queue = queue_name(PUSHED_CHANGE, server_id, child_id)
        self.block_ms = block_ms

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.forward_once()
            except Exception:
                # Whatever WeChat or the broker does, the listener lives on; unacknowledged changes come again.
                log.exception("forwarding pushed changes of child %s failed; trying again", self.child_id)
                stop.wait(_ERROR_PAUSE_S)

    def forward_once(self) -> int:
        changes = self.client.receive_changes(self.child_id, self.consumer, self.block_ms)
        for change in changes:
            self.app.send_task(
                task_name(PUSHED_CHANGE),
                args=[change.model_dump()],
                queue=self.queue,
                task_id=f"push-{self.queue}-{change.id}",
            )
        self.client.ack_changes(self.child_id, [c.id for c in changes])
        return len(changes)
