"""Guards that hold across every worker, kept in Redis: a per-account rate limit and once-only friend requests."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from contactq.errors import CopyRunning, InProgress, RateLimited, redis_errors
from contactq.settings import RateLimit
from tasks.metrics import Counters

# Sliding window: at most ARGV[2] members within ARGV[1] ms. A member already counted (the same task retried) passes
# without taking a second slot. Returns 0, or the ms until a slot frees. Redis's clock, so workers need not agree.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], period)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + period - now
"""

# Claims a key for one execution unless it is claimed or done: returns nil when claimed now, 'heir' when claimed by
# the task an earlier execution handed it over to, else what is there. `pending:{task id}:{execution}` is a lease: it
# expires unless the execution finishes first. KEYS[2] names the heir: while it is there, no other task claims.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v then return v end
local heir = redis.call('GET', KEYS[2])
if heir and heir ~= ARGV[3] then return 'pending:' .. heir .. ':heir' end
redis.call('SET', KEYS[1], 'pending:' .. ARGV[1], 'EX', ARGV[2])
if heir then return 'heir' end
return false
"""

# An execution passes its claim on to its task's later executions, for as long as an outcome would be kept; unless
# the claim is someone else's by now, or done.
_HAND_OVER = """
local v = redis.call('GET', KEYS[1])
if v and v ~= 'pending:' .. ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1
"""

# The lease of an execution still sending: renewed only while it is its own.
_RENEW = """
if redis.call('GET', KEYS[1]) == 'pending:' .. ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == 'pending:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_POLL_S = 0.1

log = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, client: redis.Redis, counters: Counters) -> None:
        self._window = client.register_script(_SLIDING_WINDOW)
        self.counters = counters

    def acquire(self, uin: str, op: str, limit: RateLimit, request_id: str) -> None:
        with redis_errors("rate limiter"):
            wait_ms = int(
                self._window(
                    keys=[f"contactq:ratelimit:{uin}:{op}"],
                    args=[int(limit.period_s * 1000), limit.count, request_id],
                )
            )
        if wait_ms > 0:
            self.counters.add("rate_limited", op, uin)
            raise RateLimited(
                f"{op} for uin {uin} is limited to {limit.count} per {limit.period_s:g} s; next slot in "
                f"{wait_ms / 1000:.1f} s"
            )


class Once:
    """A friend request is sent once per key within the window, however often and however concurrently it is
    delivered: one execution at a time holds a lease on the key, and its outcome is kept for the window (written by
    the task's answer: tasks.ledger.Answer.outcome)."""

    def __init__(self, client: redis.Redis, lease_s: int, window_s: int) -> None:
        self.r = client
        self.lease_s = lease_s
        self.window_s = window_s
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._hand_over = client.register_script(_HAND_OVER)

    @staticmethod
    def key(op: str, uin: str, parts: tuple[str, ...]) -> str:
        # surrogatepass: a request's strings may hold lone surrogates (valid JSON), and still make a key.
        digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"contactq:once:{op}:{uin}:{digest}"

    def claim(self, key: str, execution: str, wait_s: float) -> Claimed | dict[str, Any]:
        """Claimed when this execution (`{task id}:{a token of this run}`) may go ahead; the earlier outcome when the
        request was already done.

        A request another execution is sending is waited for and its outcome shared: up to `wait_s` for another task
        (then InProgress), and until its lease runs out for an earlier execution of the same task (a redelivery whose
        worker died). Then the task may go ahead: whether a dead execution reached WeChat is unknown, and a request
        lost is worse than one sent again. An earlier execution that still renews its lease after that is alive and
        will answer: CopyRunning. A claim handed over (`hand_over`) waits for its task alone, however long.
        """
        task_id = _task_of(execution)
        start = time.monotonic()
        while True:
            with redis_errors("idempotency keys"):
                found = self._claim(keys=[key, _heir(key)], args=[execution, self.lease_s, task_id])
            if not found or found == "heir":
                return Claimed(heir=bool(found))
            if not str(found).startswith("pending:"):
                outcome: dict[str, Any] = json.loads(found)
                return outcome
            holder_task = _task_of(str(found).removeprefix("pending:"))
            if holder_task == task_id and time.monotonic() - start >= self.lease_s + 1:
                raise CopyRunning(f"task {task_id} is still being run by another copy")  # its lease is renewed
            if holder_task != task_id and time.monotonic() - start >= wait_s:
                raise InProgress(f"the same request is still being sent by task {holder_task}")
            time.sleep(_POLL_S)

    @contextmanager
    def held(self, key: str, execution: str) -> Iterator[None]:
        """Keep the claim while the request is sent, however long the protocol server takes (a Gewechat friend
        request is two calls, each tried twice): a thread renews the lease every third of it. A worker that dies
        stops renewing, and its claim runs out within one lease."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease_s / 3):
                try:
                    self._renew(keys=[key], args=[execution, self.lease_s])
                except redis.RedisError as e:
                    log.warning("the lease on %s was not renewed: %s", key, e)

        renewer = threading.Thread(target=renew, name="once-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=self.lease_s)  # a renewal hung on Redis does not hold the task; the lease runs out

    def holds(self, key: str, task_id: str) -> bool:
        """Whether an execution of the task holds the claim now."""
        with redis_errors("idempotency keys"):
            found = str(self.r.get(key) or "")
        return found.startswith("pending:") and _task_of(found.removeprefix("pending:")) == task_id

    def release(self, key: str, execution: str) -> None:
        """Forget a claim whose request failed, so that it may be tried again."""
        with redis_errors("idempotency keys"):
            self._release(keys=[key], args=[execution])

    def hand_over(self, key: str, execution: str) -> None:
        """Pass the claim of an execution that changed something in WeChat (a friend request sent, one accepted) and
        then failed on to its task's retry: no copy with another task id may send it again meanwhile, even should the
        retry's worker die, and the retry need not wait out a lease."""
        with redis_errors("idempotency keys"):
            self._hand_over(keys=[key, _heir(key)], args=[execution, _task_of(execution), self.window_s])


@dataclass(frozen=True)
class Claimed:
    """A claim taken; `heir` when an earlier execution of the task changed something in WeChat and handed it over."""

    heir: bool = False


def _heir(key: str) -> str:
    return f"{key}:heir"


def _task_of(execution: str) -> str:
    """The task id of `{task id}:{token}`: everything before the last colon (ActiveMQ's message ids hold colons)."""
    return execution.rsplit(":", 1)[0]
