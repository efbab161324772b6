"""The replies stream against the real Redis: what a bridge takes stays its own until done, comes again when it was
not finished, and goes to another bridge when its bridge is gone."""

from __future__ import annotations

import time

import redis

from tasks.messages import OutboxReply
from tasks.outbox import RepliesStream, Taken

KEY = "test.outbox.replies"


def reply(n: int) -> OutboxReply:
    return OutboxReply(queueName="queue.reply.test", correlationId=f"ID:{n}", reply={"n": n, "status": 0})


def add(r: redis.Redis, sent: OutboxReply) -> None:
    """As a request's answer writes it (tasks.ledger.Ledger.answer)."""
    r.xadd(KEY, {RepliesStream.FIELD: RepliesStream.encode(sent)})


def ids(taken: list[Taken]) -> list[str]:
    return [t.reply.correlationId if t.reply else t.raw for t in taken]


def test_taken_until_done_and_then_gone(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY)
    for n in range(3):
        add(store_redis, reply(n))
    taken = stream.take("a", count=10, block_ms=100)
    assert ids(taken) == ["ID:0", "ID:1", "ID:2"]
    assert taken[0].reply == reply(0)
    assert stream.take("b", count=10, block_ms=100) == []  # another bridge gets none of them
    stream.done([t.id for t in taken])
    assert stream.depth() == 0
    assert stream.take("a", count=10, block_ms=100, again=True) == []


def test_not_finished_is_taken_again_by_its_consumer(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY)
    add(store_redis, reply(1))
    add(store_redis, reply(2))
    first, second = stream.take("a", count=10, block_ms=100)
    stream.done([first.id])
    assert stream.take("a", count=10, block_ms=100) == []  # nothing new
    assert ids(stream.take("a", count=10, block_ms=100, again=True)) == ["ID:2"]
    assert stream.depth() == 1


def test_a_gone_bridges_replies_go_to_another_after_the_idle_time(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY, orphan_idle_s=2)
    add(store_redis, reply(1))
    assert ids(stream.take("gone", count=10, block_ms=100)) == ["ID:1"]
    assert stream.take("alive", count=10, block_ms=100, again=True) == []  # not idle long enough yet
    time.sleep(2.2)
    [claimed] = stream.take("alive", count=10, block_ms=100, again=True)
    assert claimed.reply == reply(1)
    stream.done([claimed.id])
    assert stream.depth() == 0


def test_an_entry_we_did_not_write_is_given_as_it_is(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY)
    store_redis.xadd(KEY, {"reply": '{"queueName": "/topic/x"}'})
    store_redis.xadd(KEY, {"other": "field"})
    bad_reply, no_reply = stream.take("a", count=10, block_ms=100)
    assert (bad_reply.reply, bad_reply.raw) == (None, '{"queueName": "/topic/x"}')
    assert no_reply.reply is None and "other" in no_reply.raw


def test_a_deleted_stream_is_made_again(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY)
    add(store_redis, reply(1))
    stream.take("a", count=10, block_ms=100)
    store_redis.delete(KEY)  # a reset
    assert stream.take("a", count=10, block_ms=100) == []
    add(store_redis, reply(2))
    assert ids(stream.take("a", count=10, block_ms=100)) == ["ID:2"]


def test_consumers_of_bridges_gone_are_forgotten_once_they_hold_nothing(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY, orphan_idle_s=0.2)
    for n in (1, 2, 3):
        add(store_redis, reply(n))
    stream.done([t.id for t in stream.take("gone-empty", count=1, block_ms=100)])
    stream.take("gone-holding", count=1, block_ms=100)
    stream.done([t.id for t in stream.take("me", count=1, block_ms=100)])
    time.sleep(0.3)
    assert stream.forget_idle("me") == 1

    def consumers() -> set[str]:
        return {c["name"] for c in store_redis.xinfo_consumers(KEY, RepliesStream.GROUP)}

    assert consumers() == {"gone-holding", "me"}  # it still holds a reply: kept until another takes it
    [orphan] = stream.take("me", count=10, block_ms=100, again=True)
    assert ids([orphan]) == ["ID:2"]
    stream.done([orphan.id])
    time.sleep(0.3)
    assert stream.forget_idle("me") == 1
    assert consumers() == {"me"}


def test_nobody_to_forget_before_the_stream_is_there(store_redis: redis.Redis) -> None:
    assert RepliesStream(store_redis, KEY).forget_idle("me") == 0


def test_a_reply_echoing_a_lone_surrogate_is_taken_whole(store_redis: redis.Redis) -> None:
    stream = RepliesStream(store_redis, KEY)
    sent = OutboxReply(queueName="queue.reply.test", correlationId="ID:s", reply={"remark": "\ud83d", "status": 0})
    add(store_redis, sent)
    [taken] = stream.take("a", count=10, block_ms=100)
    assert taken.reply == sent
    stream.done([taken.id])
