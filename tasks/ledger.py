"""The ledger of requests the bridge accepted: each stays here until its task has answered it (or dead-lettered it),
so that one the Celery broker lost can be found and sent again (bridge/recovery.py).

`contactq:ledger`               ZSET task id -> when it was accepted, last sent again or last seen waiting (epoch s)
`contactq:ledger:{task id}`     the entry as JSON: operation, queue, request, times sent again
`contactq:answered:{task id}`   the task has answered: a copy of it delivered again does nothing, or gives the result
                                kept here (when a caller waits for one: see Ledger.settle)
`contactq:bridged:{task id}`    entered: a copy of the request's message delivered again is not sent
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel

from contactq.errors import redis_errors
from tasks import plainjson

KEY = "contactq:ledger"

# Marks an entry as sent again, only if nobody (another bridge's sweep, its own task answering) touched it since it
# was read with score ARGV[1]: 1 when this caller is to send it.
_CLAIM_RESEND = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[4], 'XX')
return 1
"""


# Enters a request unless a copy of it was entered (its message delivered again, maybe to another bridge): 1 when
# entered now. One step, so that the claim and the entry are never apart. A copy finds the claim and is not sent
# again, even while the first is still being sent: should that send never happen (its bridge died), the entry is
# overdue in the ledger and the recovery sends it.
_ACCEPT = """
if not redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[4]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


# The answered mark of a task whose caller waits for no result (the bridge's: its reply goes back through ActiveMQ).
_NO_RESULT = "1"


def _bridged_key(task_id: str) -> str:
    return f"contactq:bridged:{task_id}"


def _answered_key(task_id: str) -> str:
    return f"contactq:answered:{task_id}"


@dataclass(frozen=True)
class Answered:
    result: dict[str, Any] | None  # what the task returned, when a caller waits for its result


class Entry(BaseModel):
    task_id: str
    op: str
    queue: str
    request: dict[str, Any]
    resent: int = 0
    score: float = 0.0  # when it was last accepted, sent again or seen waiting, as read from the ledger

    def document(self) -> str:
        # plainjson: a request may hold any string it came with, a lone surrogate included.
        return plainjson.dumps(self.model_dump(exclude={"score"}))


class Ledger:
    def __init__(self, client: redis.Redis, answered_ttl_s: int) -> None:
        self.r = client
        self.answered_ttl_s = answered_ttl_s
        self._claim_resend = client.register_script(_CLAIM_RESEND)
        self._accept = client.register_script(_ACCEPT)

    def accept(self, entry: Entry) -> bool:
        """Enter a request before its task is sent, so that no accepted request goes unwatched: True when entered
        now (the caller is to send it), False when a copy was entered before."""
        with redis_errors("ledger"):
            entered = self._accept(
                keys=[KEY, f"{KEY}:{entry.task_id}", _bridged_key(entry.task_id)],
                args=[entry.task_id, time.time(), entry.document(), self.answered_ttl_s],
            )
        return bool(entered)

    def forget(self, task_id: str) -> None:
        """The request was not sent after all: a copy delivered again is entered and sent."""
        with redis_errors("ledger"):
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(KEY, task_id).delete(f"{KEY}:{task_id}").delete(_bridged_key(task_id))
            pipe.execute()

    def settle(self, task_id: str, pipe: redis.client.Pipeline, result: dict[str, Any] | None = None) -> None:
        """The task answered (or dead-lettered) its request: nothing more to watch, and a copy delivered again is not
        done again. Queued on the caller's transaction, with whatever else the answer writes.

        `result` is kept when a caller waits for it: Celery stores a task's result after the task returns, and a
        worker killed in between leaves the caller without it; the copy delivered again gives it instead."""
        pipe.zrem(KEY, task_id)
        pipe.delete(f"{KEY}:{task_id}")
        mark = _NO_RESULT if result is None else plainjson.dumps(result)
        pipe.set(_answered_key(task_id), mark, ex=self.answered_ttl_s)

    def answered(self, task_id: str) -> Answered | None:
        with redis_errors("ledger"):
            mark = self.r.get(_answered_key(task_id))
        if mark is None:
            return None
        return Answered(None if mark == _NO_RESULT else json.loads(mark))

    def overdue(self, older_than_s: float, limit: int = 500) -> list[Entry]:
        """Entries accepted, sent again or seen waiting more than `older_than_s` ago, oldest first."""
        with redis_errors("ledger"):
            rows = self.r.zrangebyscore(KEY, "-inf", time.time() - older_than_s, start=0, num=limit, withscores=True)
            docs = self.r.mget([f"{KEY}:{task_id}" for task_id, _ in rows]) if rows else []
        return [
            Entry.model_validate({**json.loads(doc), "score": score})
            for (_, score), doc in zip(rows, docs, strict=True)
            if doc
        ]

    def seen_waiting(self, entries: list[Entry]) -> None:
        """These are in their queue or held by a worker: not looked at again before they are overdue again."""
        if entries:
            with redis_errors("ledger"):
                self.r.zadd(KEY, {e.task_id: time.time() for e in entries}, xx=True)

    def claim_resend(self, entry: Entry) -> bool:
        """True when this caller is to send `entry` again: it was not answered or sent again since it was read."""
        again = entry.model_copy(update={"resent": entry.resent + 1})
        with redis_errors("ledger"):
            claimed = self._claim_resend(
                keys=[KEY, f"{KEY}:{entry.task_id}"],
                args=[entry.task_id, repr(entry.score), time.time(), again.document()],
            )
        return bool(claimed)

    def watched(self) -> int:
        with redis_errors("ledger"):
            return int(self.r.zcard(KEY))
