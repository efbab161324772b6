"""The ledger of requests the bridge accepted: each stays here until its task has answered it (or dead-lettered it),
so that one the Celery broker lost can be found and sent again (bridge/recovery.py).

`contactq:ledger`           ZSET task id -> when it was accepted (or last sent again), epoch seconds
`contactq:ledger:{task id}` the entry as JSON: operation, queue, request, times sent again
"""

from __future__ import annotations

import time
from typing import Any

import redis
from pydantic import BaseModel

from tasks.store import redis_errors

KEY = "contactq:ledger"


class Entry(BaseModel):
    task_id: str
    op: str
    queue: str
    request: dict[str, Any]
    resent: int = 0


class Ledger:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def accept(self, entry: Entry) -> None:
        with redis_errors("ledger"):
            pipe = self.r.pipeline(transaction=True)
            pipe.set(f"{KEY}:{entry.task_id}", entry.model_dump_json())
            pipe.zadd(KEY, {entry.task_id: time.time()})
            pipe.execute()

    def settle(self, task_id: str) -> None:
        """The request is answered (or dead-lettered): nothing more to watch."""
        with redis_errors("ledger"):
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(KEY, task_id)
            pipe.delete(f"{KEY}:{task_id}")
            pipe.execute()

    def overdue(self, older_than_s: float, limit: int = 500) -> list[Entry]:
        """Entries accepted (or sent again) more than `older_than_s` ago and still not answered."""
        with redis_errors("ledger"):
            ids = self.r.zrangebyscore(KEY, "-inf", time.time() - older_than_s, start=0, num=limit)
            docs = self.r.mget([f"{KEY}:{task_id}" for task_id in ids]) if ids else []
        return [Entry.model_validate_json(doc) for doc in docs if doc]

    def resent(self, entry: Entry) -> None:
        """`entry` was sent again now."""
        with redis_errors("ledger"):
            pipe = self.r.pipeline(transaction=True)
            pipe.set(f"{KEY}:{entry.task_id}", entry.model_copy(update={"resent": entry.resent + 1}).model_dump_json())
            pipe.zadd(KEY, {entry.task_id: time.time()})
            pipe.execute()

    def watched(self) -> int:
        with redis_errors("ledger"):
            return int(self.r.zcard(KEY))
