"""The ledger's entry of a bridged request, the claim that keeps a redelivered copy from being sent twice, and the
answer written once, against the real Redis."""

from __future__ import annotations

import uuid

import redis

from contactq.settings import Settings, get_settings
from tasks import metrics
from tasks.ledger import Answer, Answered, Entry, Ledger
from tasks.messages import OutboxReply
from tasks.metrics import Counters
from tests.stack import RepliesTap


def settings() -> Settings:
    return get_settings().model_copy(
        update={"dedupe_window_s": 60, "replies_outbox": f"test.replies.{uuid.uuid4().hex[:8]}"}
    )


def entry(task_id: str) -> Entry:
    return Entry(task_id=task_id, op="searchContact", queue="queue.searchContact_1_1", request={"uin": "1"})


def test_a_copy_is_not_entered_again(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, settings())
    assert ledger.accept(entry("ID:a"))  # entered: this caller sends it
    assert not ledger.accept(entry("ID:a"))
    assert ledger.watched() == 1  # the copy entered nothing
    assert 55 < store_redis.ttl("contactq:bridged:ID:a") <= 60  # the claim outlives any redelivery of the message


def test_a_forgotten_entry_is_entered_by_the_next_copy(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, settings())
    assert ledger.accept(entry("ID:b"))
    ledger.forget("ID:b")  # its send failed
    assert ledger.watched() == 0
    assert ledger.accept(entry("ID:b"))
    assert [e.task_id for e in ledger.overdue(older_than_s=-1)] == ["ID:b"]


def test_the_answered_mark_keeps_the_result_a_caller_waits_for(store_redis: redis.Redis) -> None:
    ledger = Ledger(store_redis, settings())
    assert ledger.answered("ID:c") is None
    for task_id, result in (("ID:c", None), ("ID:d", {"status": 0, "nick_name": "运营二号\ud800"})):
        assert ledger.accept(entry(task_id))
        assert ledger.answer(task_id, Answer(result=result)) is None
    assert ledger.answered("ID:c") == Answered(None)  # the bridge's: its reply went through ActiveMQ
    assert ledger.answered("ID:d") == Answered({"status": 0, "nick_name": "运营二号\ud800"})
    assert ledger.watched() == 0


def test_a_request_is_answered_once_whoever_answers(store_redis: redis.Redis) -> None:
    # Two copies of one task running at once, or a task and the answer of its hard time limit: the first answer is
    # written whole, the second gets the first. A friend request's outcome is kept whoever answered: it says what
    # reached WeChat, and a copy with another task id is answered from it.
    cfg = settings()
    ledger = Ledger(store_redis, cfg)
    assert ledger.accept(entry("ID:e"))
    once_key = "contactq:once:addContact:1:test"

    def answer(status: int, outcome: bool) -> Answer:
        return Answer(
            reply=OutboxReply(queueName="queue.reply.e", correlationId="ID:e", reply={"status": status}),
            result={"status": status},
            counts=[metrics.field("requests", "addContact", "1", str(status))],
            outcome=(once_key, {"status": status}) if outcome else None,
        )

    assert ledger.answer("ID:e", answer(504, outcome=False)) is None  # the hard time limit's, in the last instant
    assert ledger.answer("ID:e", answer(0, outcome=True)) == Answered({"status": 504})
    assert [r["reply"] for _, r in RepliesTap(store_redis, cfg.replies_outbox).take()] == [{"status": 504}]
    assert Counters(store_redis).read()["requests"] == {("addContact", "1", "504"): 1}
    assert store_redis.get(once_key) == '{"status":0}'  # it was sent: a copy within the window is not sent again
    assert 55 < store_redis.ttl(once_key) <= 60
    assert ledger.watched() == 0


def test_a_request_answered_before_it_is_entered_is_not_entered(store_redis: redis.Redis) -> None:
    # Refused and answered on one delivery (its account offline), its ACK lost, valid on the next: not sent.
    ledger = Ledger(store_redis, settings())
    assert ledger.answer("ID:f", Answer()) is None
    assert not ledger.accept(entry("ID:f"))
    assert ledger.watched() == 0 and ledger.taken("ID:f")


def test_a_copy_that_finds_its_request_answered_takes_its_entry_out(store_redis: redis.Redis) -> None:
    # Entered by a bridge as another answered it (a refusal racing an acceptance of the same message): the task's copy
    # finds the mark, and the entry leaves the ledger with its look (on RabbitMQ no sweep would ever take it out).
    ledger = Ledger(store_redis, settings())
    assert ledger.accept(entry("ID:g"))
    store_redis.set("contactq:answered:ID:g", "1")  # the mark, without the settling that goes with it
    assert ledger.answered("ID:g") == Answered(None)
    assert ledger.watched() == 0
