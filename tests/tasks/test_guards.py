"""The once-only lease of friend requests, against the real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from contactq.errors import CopyRunning, InProgress
from contactq.settings import get_settings
from tasks.guards import Claimed, Once
from tasks.ledger import Answer, Ledger


def test_another_task_waits_only_its_own_wait(store_redis: redis.Redis) -> None:
    once = Once(store_redis, lease_s=30, window_s=60)
    key = once.key("addContact", "1", ("v1",))
    # ActiveMQ's message ids hold colons: the holder is told apart by everything before the execution's token.
    assert once.claim(key, "ID:vm-1:1:1:1:1:aaaa", wait_s=0.2) == Claimed()
    start = time.monotonic()
    with pytest.raises(InProgress, match="ID:vm-1:1:1:1:1$"):
        once.claim(key, "ID:vm-1:1:1:1:2:bbbb", wait_s=0.2)
    assert time.monotonic() - start < 2


def test_an_outcome_is_shared_and_a_released_claim_is_free(store_redis: redis.Redis) -> None:
    once = Once(store_redis, lease_s=30, window_s=60)
    key = once.key("addContact", "1", ("v1",))
    assert once.claim(key, "t1:a", wait_s=0.2) == Claimed()
    once.release(key, "t1:a")
    assert once.claim(key, "t2:b", wait_s=0.2) == Claimed()
    outcome = {"status": 0, "message": "", "result": {"remark": "\ud83d"}}
    Ledger(store_redis, get_settings()).answer("t2", Answer(outcome=(key, outcome)))  # t2's answer keeps it
    assert once.claim(key, "t3:c", wait_s=0.2) == {"status": 0, "message": "", "result": {"remark": "\ud83d"}}


def test_a_claim_is_held_while_its_request_is_sent_and_runs_out_after(store_redis: redis.Redis) -> None:
    # A friend request through Gewechat may take longer than the lease (two calls, each tried twice): a copy with
    # another task id must still find it being sent, and a claim nobody renews (its worker died) must run out.
    once = Once(store_redis, lease_s=3, window_s=60)
    key = once.key("addContact", "1", ("v1",))
    assert once.claim(key, "t1:a", wait_s=0.1) == Claimed()
    with once.held(key, "t1:a"):
        time.sleep(7)  # past two leases
        with pytest.raises(InProgress) as other:
            once.claim(key, "t2:b", wait_s=0.2)
        assert not isinstance(other.value, CopyRunning)  # another task's caller is answered: in progress
        with pytest.raises(CopyRunning):  # a copy of the same task stops without answering: t1:a answers
            once.claim(key, "t1:c", wait_s=0.2)
    time.sleep(3.2)
    assert once.claim(key, "t2:b", wait_s=0.1) == Claimed()


def test_a_claim_handed_over_is_taken_by_the_tasks_later_executions_alone(store_redis: redis.Redis) -> None:
    # t1 accepted a friend request, then failed to store the new friend: its retry goes on at once, while a copy
    # with another task id (a second click) waits and is told the request is in progress; even once the retry's
    # worker died and its lease ran out, until t1 answers.
    once = Once(store_redis, lease_s=1, window_s=60)
    key = once.key("addNew", "1", ("v1", "ticket"))
    assert once.claim(key, "t1:a", wait_s=0.1) == Claimed()
    once.hand_over(key, "t1:a")
    with pytest.raises(InProgress, match="t1$"):
        once.claim(key, "t2:b", wait_s=0.3)
    start = time.monotonic()
    assert once.claim(key, "t1:c", wait_s=0.1) == Claimed(heir=True)
    assert time.monotonic() - start < 0.5
    time.sleep(1.2)  # t1:c's worker died: its lease ran out
    with pytest.raises(InProgress, match="t1$"):
        once.claim(key, "t2:b", wait_s=0.3)
    assert once.claim(key, "t1:d", wait_s=0.1) == Claimed(heir=True)
    outcome = {"status": 0, "message": "", "result": {"field": "wxid_new"}}
    Ledger(store_redis, get_settings()).answer("t1", Answer(outcome=(key, outcome)))
    assert once.claim(key, "t2:b", wait_s=0.1) == outcome


def test_a_claim_is_known_by_its_task(store_redis: redis.Redis) -> None:
    # What the hard time limit asks before it keeps a killed task's outcome. Task ids may hold colons, and a request's
    # strings lone surrogates (valid JSON).
    once = Once(store_redis, lease_s=30, window_s=60)
    key = once.key("addContact", "1", ("\ud800",))
    assert not once.holds(key, "ID:h:1:1:2")
    assert once.claim(key, "ID:h:1:1:2:aaaa", wait_s=0.1) == Claimed()
    assert once.holds(key, "ID:h:1:1:2")
    assert not once.holds(key, "ID:h:1:1")
