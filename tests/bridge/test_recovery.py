"""Reading kombu's Redis messages for the task ids they carry, and giving up on a request lost too often."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from kombu import Connection

from bridge.recovery import Recovery, queue_keys, task_ids
from contactq.settings import get_settings
from tasks.app import app
from tasks.ledger import Answered, Entry, Ledger
from tasks.metrics import Counters
from tasks.outbox import Outbox
from tests.brokers import BROKER
from tests.stack import RepliesTap, Tap


def message(task_id: str) -> dict[str, object]:
    return {"body": "W10=", "headers": {"id": task_id, "argsrepr": "('ID:x:1:1:1:10',)"}, "properties": {}}


def test_task_ids_of_queued_and_unacknowledged_messages() -> None:
    queued = json.dumps(message("ID:x:1:1:1:1"))
    unacked = json.dumps([message("ID:x:1:1:1:2"), "queue.searchContact_1_1", "queue.searchContact_1_1"])
    assert task_ids([queued, unacked, "not json", json.dumps({"no": "headers"})]) == {"ID:x:1:1:1:1", "ID:x:1:1:1:2"}
    # An id is matched whole, not found inside a longer one or in the arguments' repr.
    assert "ID:x:1:1:1:10" not in task_ids([queued])


def test_every_priority_list_of_a_queue_is_looked_in() -> None:
    assert queue_keys("q") == ["q", "q\x06\x163", "q\x06\x166", "q\x06\x169"]


@pytest.mark.skipif(BROKER != "redis", reason="the recovery looks for lost tasks in the Redis broker")
def test_a_request_lost_too_often_is_answered_and_dead_lettered_once(store_redis: redis.Redis) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(
        update={
            "ledger_overdue_s": 0.0,
            "ledger_max_resends": 0,  # given up at the first loss
            "replies_outbox": f"test.replies.{suffix}",
            "deadletter_queue": f"test.deadletter.{suffix}",
        }
    )
    outbox = Outbox(app, settings, store_redis)
    ledger = Ledger(store_redis, settings)
    recovery = Recovery(app, settings, ledger, outbox, Counters(store_redis))
    request = {"adminUserId": 18, "uin": "1", "userName": "ops_two", "queueName": "queue.reply.lost"}
    entry = Entry(task_id=f"ID:lost:{suffix}", op="searchContact", queue="queue.searchContact_9_9", request=request)
    assert ledger.accept(entry)
    with Connection(settings.broker_url) as conn:
        dead = Tap(conn, outbox.deadletter_queue)
        recovery.sweep()
        recovery.sweep()  # settled: nothing more
        letters = dead.wait(lambda got: len(got) >= 1)
    replies = RepliesTap(store_redis, settings.replies_outbox).take()
    assert [(r["correlationId"], r["reply"]["status"]) for _, r in replies] == [(entry.task_id, 500)]
    assert [letter["request"] for _, letter in letters] == [request]
    assert ledger.watched() == 0 and ledger.answered(entry.task_id) == Answered(None)


@pytest.mark.skipif(BROKER != "redis", reason="the recovery looks for lost tasks in the Redis broker")
def test_an_entry_whose_request_was_answered_is_dropped_not_sent_again(store_redis: redis.Redis) -> None:
    # However it came to be left (a copy of its task that found the mark stops without settling anything), an entry of
    # an answered request is not a lost request.
    suffix = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(update={"ledger_overdue_s": 0.0, "replies_outbox": f"test.replies.{suffix}"})
    ledger = Ledger(store_redis, settings)
    recovery = Recovery(app, settings, ledger, Outbox(app, settings, store_redis), Counters(store_redis))
    entry = Entry(task_id=f"ID:answered:{suffix}", op="searchContact", queue="queue.searchContact_9_9", request={})
    assert ledger.accept(entry)
    store_redis.set(f"contactq:answered:{entry.task_id}", "1")  # the mark, without the settling that goes with it
    assert recovery.sweep() == []
    assert ledger.watched() == 0
    assert Counters(store_redis).read()["recovered"] == {}
