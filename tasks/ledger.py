"""The ledger of requests the bridge accepted: each stays here until its task has answered it (or dead-lettered it),
so that one the Celery broker lost can be found and sent again (bridge/recovery.py).

`contactq:ledger`               ZSET task id -> when it was accepted, last sent again or last seen waiting (epoch s)
`contactq:ledger:{task id}`     the entry as JSON: operation, queue, request, times sent again
`contactq:answered:{task id}`   the request was answered: a copy of its task delivered again does nothing, or gives
                                the result kept here (when a caller waits for one: see Ledger.answer)
`contactq:bridged:{task id}`    entered: a copy of the request's message delivered again is not sent
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel

from contactq.errors import redis_errors
from contactq.settings import Settings
from tasks import metrics, plainjson
from tasks.messages import OutboxReply
from tasks.outbox import RepliesStream

KEY = "contactq:ledger"

# Marks an entry as sent again, only if nobody (another bridge's sweep, its own task answering) touched it since it
# was read with score ARGV[1]: 1 when this caller is to send it. An entry whose request was answered (KEYS[3]; say a
# copy entered after a refusal answered it) is dropped instead.
_CLAIM_RESEND = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return 0
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[4], 'XX')
return 1
"""


# Enters a request unless a copy of it was entered (its message delivered again, maybe to another bridge) or it was
# answered (refused on an earlier delivery, its ACK lost): 1 when entered now. One step, so that the claim and the
# entry are never apart. A copy finds the claim and is not sent again, even while the first is still being sent:
# should that send never happen (its bridge died), the entry is overdue in the ledger and the recovery sends it.
_ACCEPT = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if not redis.call('SET', KEYS[3], 1, 'NX', 'EX', ARGV[4]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


# Answers a request once. The first answer (of any copy of its task, of the task's hard time limit, of the bridge's
# recovery or refusal) writes the answered mark, the reply for the bridges to send and the counts; a later one gets
# the mark instead. Whoever answers, the request leaves the ledger (an answered request needs no watching) and a
# friend request's outcome is kept (it says what reached WeChat). The mark is the first write: a Redis out of memory
# refuses the script before anything is written. KEYS: the mark, the ledger, the entry, the replies stream, the
# outcome's key (or ''), the counters. ARGV: the task id, the mark, the window (s), the replies stream's field and
# entry (or ''), the outcome (or ''), then the counters' fields.
_ANSWER = """
local first = redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if ARGV[6] ~= '' then redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[3]) end
if not first then return redis.call('GET', KEYS[1]) end
if ARGV[5] ~= '' then redis.call('XADD', KEYS[4], '*', ARGV[4], ARGV[5]) end
for i = 7, #ARGV do redis.call('HINCRBY', KEYS[6], ARGV[i], 1) end
return false
"""


# The answered mark (KEYS[1]), if any; an answered request's entry (a copy entered as its answer was being written)
# leaves the ledger on the way. No write that needs memory: it answers while Redis is full.
_ANSWERED = """
local mark = redis.call('GET', KEYS[1])
if mark then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
end
return mark
"""


# The answered mark of a task whose caller waits for no result (the bridge's: its reply goes back through ActiveMQ).
_NO_RESULT = "1"


def _answered(mark: str) -> Answered:
    return Answered(None if mark == _NO_RESULT else json.loads(mark))


def _entry_key(task_id: str) -> str:
    return f"{KEY}:{task_id}"


def _bridged_key(task_id: str) -> str:
    return f"contactq:bridged:{task_id}"


def _answered_key(task_id: str) -> str:
    return f"contactq:answered:{task_id}"


@dataclass(frozen=True)
class Answered:
    result: dict[str, Any] | None  # what the task returned, when a caller waits for its result


@dataclass(frozen=True)
class Answer:
    """What a request's answer writes with its answered mark."""

    reply: OutboxReply | None = None  # for the bridges to send to the request's queueName
    result: dict[str, Any] | None = None  # kept in the mark when a caller waits for the task's result
    counts: Sequence[str] = ()  # counters' fields (metrics.field)
    outcome: tuple[str, dict[str, Any]] | None = None  # a friend request's once-key and outcome (tasks.guards.Once)


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
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.r = client
        self.answered_ttl_s = settings.dedupe_window_s  # also how long a friend request's outcome is kept
        self.replies_key = settings.replies_outbox
        self._claim_resend = client.register_script(_CLAIM_RESEND)
        self._accept = client.register_script(_ACCEPT)
        self._answer = client.register_script(_ANSWER)
        self._answered = client.register_script(_ANSWERED)

    def accept(self, entry: Entry) -> bool:
        """Enter a request before its task is sent, so that no accepted request goes unwatched: True when entered
        now (the caller is to send it), False when a copy was entered or answered before."""
        with redis_errors("ledger"):
            entered = self._accept(
                keys=[KEY, _entry_key(entry.task_id), _bridged_key(entry.task_id), _answered_key(entry.task_id)],
                args=[entry.task_id, time.time(), entry.document(), self.answered_ttl_s],
            )
        return bool(entered)

    def forget(self, task_id: str) -> None:
        """The request was not sent after all: a copy delivered again is entered and sent."""
        with redis_errors("ledger"):
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(KEY, task_id).delete(_entry_key(task_id)).delete(_bridged_key(task_id))
            pipe.execute()

    def answer(self, task_id: str, answer: Answer) -> Answered | None:
        """Answer the request, once: None when answered now, the earlier answer when it was answered before.

        `answer.result` is kept when a caller waits for it: Celery stores a task's result after the task returns, and
        a worker killed in between leaves the caller without it; the copy delivered again gives it instead."""
        outcome = ("", "") if answer.outcome is None else (answer.outcome[0], plainjson.dumps(answer.outcome[1]))
        entry = "" if answer.reply is None else RepliesStream.encode(answer.reply)
        with redis_errors("ledger"):
            earlier = self._answer(
                keys=[_answered_key(task_id), KEY, _entry_key(task_id), self.replies_key, outcome[0], metrics.KEY],
                args=[
                    task_id,
                    _NO_RESULT if answer.result is None else plainjson.dumps(answer.result),
                    self.answered_ttl_s,
                    RepliesStream.FIELD,
                    entry,
                    outcome[1],
                    *answer.counts,
                ],
            )
        return None if earlier is None else _answered(earlier)

    def taken(self, task_id: str) -> bool:
        """Whether a request was entered (its task sent) or answered: a copy of its message is only acknowledged."""
        with redis_errors("ledger"):
            return bool(self.r.exists(_bridged_key(task_id), _answered_key(task_id)))

    def answered(self, task_id: str) -> Answered | None:
        with redis_errors("ledger"):
            mark = self._answered(keys=[_answered_key(task_id), KEY, _entry_key(task_id)], args=[task_id])
        return None if mark is None else _answered(mark)

    def overdue(self, older_than_s: float, limit: int = 500) -> list[Entry]:
        """Entries accepted, sent again or seen waiting more than `older_than_s` ago, oldest first."""
        with redis_errors("ledger"):
            rows = self.r.zrangebyscore(KEY, "-inf", time.time() - older_than_s, start=0, num=limit, withscores=True)
            docs = self.r.mget([_entry_key(task_id) for task_id, _ in rows]) if rows else []
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
                keys=[KEY, _entry_key(entry.task_id), _answered_key(entry.task_id)],
                args=[entry.task_id, repr(entry.score), time.time(), again.document()],
            )
        return bool(claimed)

    def watched(self) -> int:
        with redis_errors("ledger"):
            return int(self.r.zcard(KEY))
