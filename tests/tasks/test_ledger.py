"""The ledger's entry of a bridged request and the claim that keeps a redelivered copy from being sent twice, against
the real Redis."""

from __future__ import annotations

import redis

from tasks.ledger import Answered, Entry, Ledger


def entry(task_id: str) -> Entry:
    return Entry(task_id=task_id, op="searchContact", queue="queue.searchContact_1_1", request={"uin": "1"})


def test_a_copy_is_not_entered_again(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, answered_ttl_s=60)
    assert ledger.accept(entry("ID:a"))  # entered: this caller sends it
    assert not ledger.accept(entry("ID:a"))
    assert ledger.watched() == 1  # the copy entered nothing
    assert 55 < store_redis.ttl("contactq:bridged:ID:a") <= 60  # the claim outlives any redelivery of the message


def test_a_forgotten_entry_is_entered_by_the_next_copy(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, answered_ttl_s=60)
    assert ledger.accept(entry("ID:b"))
    ledger.forget("ID:b")  # its send failed
    assert ledger.watched() == 0
    assert ledger.accept(entry("ID:b"))
    assert [e.task_id for e in ledger.overdue(older_than_s=-1)] == ["ID:b"]


def test_the_answered_mark_keeps_the_result_a_caller_waits_for(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, answered_ttl_s=60)
    assert ledger.answered("ID:c") is None
    for task_id, result in (("ID:c", None), ("ID:d", {"status": 0, "nick_name": "运营二号\ud800"})):
        assert ledger.accept(entry(task_id))
        pipe = store_redis.pipeline(transaction=True)
        ledger.settle(task_id, pipe, result)
        pipe.execute()
    assert ledger.answered("ID:c") == Answered(None)  # the bridge's: its reply went through ActiveMQ
    assert ledger.answered("ID:d") == Answered({"status": 0, "nick_name": "运营二号\ud800"})
    assert ledger.watched() == 0
