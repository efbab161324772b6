"""The ledger's entry of a bridged request and the claim that keeps a redelivered copy from being sent twice, against
the real Redis."""

from __future__ import annotations

import redis

from tasks.ledger import Entry, Ledger


def entry(task_id: str) -> Entry:
    return Entry(task_id=task_id, op="searchContact", queue="queue.searchContact_1_1", request={"uin": "1"})


def test_a_copy_is_told_the_state_of_the_first(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, answered_ttl_s=60)
    assert ledger.accept(entry("ID:a")) is None  # entered: this caller sends it
    assert ledger.accept(entry("ID:a")) == "sending"
    assert ledger.watched() == 1
    ledger.sent("ID:a")
    assert ledger.accept(entry("ID:a")) == "sent"
    assert ledger.state("ID:a") == "sent"
    assert ledger.watched() == 1  # the copies entered nothing


def test_a_forgotten_entry_is_entered_by_the_next_copy(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, answered_ttl_s=60)
    assert ledger.accept(entry("ID:b")) is None
    ledger.forget("ID:b")  # its send failed
    assert ledger.state("ID:b") is None
    assert ledger.watched() == 0
    assert ledger.accept(entry("ID:b")) is None
    assert [e.task_id for e in ledger.overdue(older_than_s=-1)] == ["ID:b"]
