"""The ledger's entry of a bridged request and the claim that keeps a redelivered copy from being sent twice, against
the real Redis."""

from __future__ import annotations

import redis

from tasks.ledger import Entry, Ledger


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
