"""Faults against the real stack: hostile bodies, hostile reply queues, the same request delivered twice at once.

Each test counts what it sent, every reply by a unique marker, the sends that reached WeChat (the simulated WeChat's
verify log) and the dead letters; then checks that normal traffic flows afterwards. The figures are printed as a table
at the end of the run (tests/faults.py).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from bridge.inbound import Accepted, Inbound, Refused
from bridge.service import Bridge
from contactq.errors import Status, StoreUnavailable
from contactq.settings import Settings
from tasks.ledger import Ledger
from tasks.messages import MAX_DEPTH
from tasks.metrics import Counters
from tasks.store import AccountRegistry
from tests.bridge.conftest import BridgeProcess, Stomp
from tests.brokers import BROKER
from tests.faults import KOMBU_MARKERS, Figures, record
from tests.servers import PrivateRedis
from tests.stack import ACCOUNT_A, RepliesTap, Stack, Worker, caller_app

A = ACCOUNT_A
DLQ = "/queue/DLQ.contactq"


def search(answer_to: str, **fields: Any) -> dict[str, Any]:
    return {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": answer_to, **fields}


def normal_traffic_flows(amq: Stomp, count: int = 10) -> int:
    """Send `count` ordinary searches and count their replies."""
    answer_to = f"queue.reply.{uuid.uuid4().hex[:8]}"
    amq.listen(f"/queue/{answer_to}")
    for n in range(count):
        amq.send("/queue/queue.searchContact_1_1", json.dumps(search(answer_to, n=n)))
    replies = amq.take_json(f"/queue/{answer_to}", count=count, timeout_s=30)
    assert sorted(r["n"] for _, r in replies) == list(range(count))
    assert all(r["status"] == 0 for _, r in replies)
    return len(replies)


def test_type_markers_in_every_field_position_are_data(amq: Stomp, stack: Stack) -> None:
    answer_to = f"queue.reply.{uuid.uuid4().hex[:8]}"
    amq.listen(f"/queue/{answer_to}")
    amq.listen(DLQ)
    # In an unknown field, nested in a list and a map, in the searched userName, and as the uin itself.
    bodies: list[tuple[dict[str, Any], int]] = []
    for marker in KOMBU_MARKERS:
        bodies += [
            (search(answer_to, extra=marker), 0),
            (search(answer_to, nested={"list": [1, marker], "map": {"m": marker}}), 0),
            (search(answer_to, userName=marker), 400),
            (search(answer_to, uin=marker), 400),
        ]
    for n, (body, _) in enumerate(bodies):
        body["mark"] = n
        amq.send("/queue/queue.searchContact_1_1", json.dumps(body))
    replies = {r["mark"]: r for _, r in amq.take_json(f"/queue/{answer_to}", count=len(bodies), timeout_s=60)}
    assert sorted(replies) == list(range(len(bodies)))
    for n, (body, status) in enumerate(bodies):
        assert replies[n]["status"] == status, replies[n]
        assert {k: replies[n][k] for k in body} == body  # echoed exactly as sent
    refused = sum(status != 0 for _, status in bodies)
    assert len(amq.take(DLQ, count=refused, timeout_s=20)) == refused
    record(
        Figures("type markers in every field", sent=len(bodies), replies=len(replies), dead_letters=refused),
        normal_after=normal_traffic_flows(amq),
    )


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_field_nested_beyond_reason_is_refused_and_not_echoed(amq: Stomp, stack: Stack) -> None:
    # Pydantic writes no reply nested beyond 254 levels: a request that deep once wedged its queue (the bridge's reply
    # could not be written, the message came back for ever) and left its task unanswered.
    answer_to = f"queue.reply.{uuid.uuid4().hex[:8]}"
    amq.listen(f"/queue/{answer_to}")
    amq.listen(DLQ)
    bodies = [
        search(answer_to, mark=0, deep=nested(300)),
        search(answer_to, mark=1, deep=[nested(MAX_DEPTH)]),
        search(answer_to, mark=2, fine=nested(MAX_DEPTH - 1)),
    ]
    for body in bodies:
        amq.send("/queue/queue.searchContact_1_1", json.dumps(body))
    replies = {r["mark"]: r for _, r in amq.take_json(f"/queue/{answer_to}", count=len(bodies), timeout_s=30)}
    for mark in (0, 1):
        assert replies[mark]["status"] == 400
        assert f"deep: nested deeper than {MAX_DEPTH} levels" in replies[mark]["message"]
        assert "deep" not in replies[mark] and {k: replies[mark][k] for k in bodies[mark] if k != "deep"} == {
            k: v for k, v in bodies[mark].items() if k != "deep"
        }
    assert replies[2]["status"] == 0 and replies[2]["fine"] == bodies[2]["fine"]
    assert len(amq.take(DLQ, count=2, timeout_s=20)) == 2
    # The same from a Python caller: answered, and dead-lettered with what can be written of the request.
    python = stack.call("searchContact", {**search("q"), "deep": nested(300)})
    assert python["status"] == 400 and "deep" not in python
    [(headers, letter)] = amq.take_json(DLQ)
    assert letter == search("q") and "nested deeper" in headers["contactq-reason"]
    record(
        Figures("a field nested 300 levels deep", sent=4, replies=len(replies) + 1, dead_letters=3),
        normal_after=normal_traffic_flows(amq),
    )


@pytest.mark.parametrize(
    "queue_name",
    [
        "queue.searchContact_1_1",  # one of our request queues: the reply would come back as a request
        "queue.searchContact_1",
        "DLQ.contactq",
        "a.reply,queue.addContact_1_1",  # composite: one reply to two queues
        "topic://topic.modcontact",
        "queue://queue.x",
        "/topic/topic.modcontact",
        "q" * 300,
        "line\nbreak",
        "",
    ],
)
def test_hostile_reply_queues_are_refused(amq: Stomp, stack: Stack, queue_name: str) -> None:
    amq.listen(DLQ)
    amq.listen("/topic/topic.modcontact")
    marker = amq.send("/queue/queue.searchContact_1_1", json.dumps(search(queue_name)))
    [(headers, body)] = amq.take_marked(DLQ, {marker})
    assert "queueName" in headers["contactq-reason"] and len(headers["contactq-reason"]) <= 500
    assert json.loads(body)["queueName"] == queue_name
    with pytest.raises(AssertionError):  # nothing went to a topic in its place
        amq.take("/topic/topic.modcontact", timeout_s=1)
    record(
        Figures(f"queueName {queue_name[:24]!r}", sent=1, replies=0, dead_letters=1),
        normal_after=normal_traffic_flows(amq, count=3),
    )


def test_the_same_friend_request_task_run_twice_at_once_reaches_wechat_once(stack: Stack, own_broker: str) -> None:
    """The same task id delivered twice at once (a redelivery while the first still runs, a message handed on by two
    bridges), run by two workers of the same child: the second waits for the first's outcome, and its answer, the
    same, is not written again."""
    tap = RepliesTap(stack.r, f"test.replies.{uuid.uuid4().hex[:8]}")  # read by no bridge
    env = {"CONTACTQ_BROKER_URL": own_broker, "CONTACTQ_REPLIES_OUTBOX": tap.key}
    workers = [Worker(f"twin{n}", [1], env, concurrency=1) for n in (1, 2)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.wait_ready()
        request = stack.add_contact_request("xiaolongnv") | {"queueName": "queue.reply.twice"}
        stack.sim.set_faults(latency_ms=1000)
        caller, task_id = caller_app(own_broker), f"twice-{uuid.uuid4().hex}"
        for _ in range(2):
            caller.send_task("contactq.addContact", args=[request], queue="queue.addContact_1_1", task_id=task_id)
        replies = tap.wait(lambda got: len(got) >= 1, quiet_s=2)
        served_by = {worker.name for worker in workers if task_id in worker.log()}
    finally:
        stack.sim.set_faults()
        for worker in workers:
            worker.stop()
    assert served_by == {"twin1", "twin2"}  # both ran it
    sends = [row for row in stack.sim.verify_log() if row[1] == 2]
    assert sends == [[A["uin"], 2, "wxid_a9s8d7f6g5h4j3", 3]]
    assert [(r["correlationId"], r["reply"]["status"]) for _, r in replies] == [(task_id, 0)]  # answered once
    record(Figures("one addContact task run twice at once", sent=2, replies=len(replies), wechat_sends=len(sends)))


def test_two_bridges_handed_the_same_message_send_one_task(stack: Stack, own_broker: str) -> None:
    """Two bridges (or a listener that reconnected) handling the same ActiveMQ message at the same moment."""
    caller = caller_app(own_broker)
    inbound = Inbound(caller, stack.settings, AccountRegistry(stack.r), stack.r)
    headers = {"message-id": f"ID:twice-{uuid.uuid4().hex}", "destination": "/queue/queue.searchContact_1_1"}
    body = json.dumps(search("queue.reply.twice")).encode()
    verdicts: list[Any] = []
    start = threading.Barrier(4)

    def handle() -> None:
        start.wait()
        verdicts.append(inbound.handle(headers["destination"], headers, body))

    threads = [threading.Thread(target=handle) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(v, Accepted) for v in verdicts)
    assert sorted(v.again for v in verdicts) == [False, True, True, True]
    with caller.connection_for_read() as conn:
        waiting = conn.default_channel.queue_declare("queue.searchContact_1_1", passive=True).message_count
    assert waiting == 1
    record(Figures("one message to four bridges at once", sent=4, replies=0, tasks=waiting))


@contextmanager
def refusing_bridge(settings: Settings, own_broker: str) -> Iterator[tuple[Bridge, Stomp, str]]:
    """A bridge handed messages by the test, its outbound link connected; and a client on its DLQ."""
    bridge = Bridge(caller_app(own_broker), settings)  # its own app: a bridge sets the app's task events
    stop = threading.Event()
    link = threading.Thread(target=bridge.out.run, args=(stop,), daemon=True)
    link.start()
    client = Stomp()
    dlq = f"/queue/{settings.bridge_deadletter_queue}"
    client.listen(dlq)
    try:
        assert bridge.out.connected.wait(30)
        yield bridge, client, dlq
    finally:
        stop.set()
        link.join(timeout=20)
        client.close()


def test_a_refused_message_delivered_again_is_answered_and_dead_lettered_once(
    broker: None, stack: Stack, own_broker: str
) -> None:
    """A message whose link dropped after its answer and before its ACK comes again under the same message id;
    ActiveMQ cannot be made to drop it there, so the bridge is handed the deliveries. A refused message is answered
    and dead-lettered once; the copy of an accepted one, refused because its account went offline meanwhile, is left
    to the task that was sent for it. One that cannot be answered (no reply queue) is dead-lettered once too."""
    suffix = uuid.uuid4().hex[:8]
    settings = stack.settings.model_copy(
        update={"bridge_deadletter_queue": f"test.dlq.{suffix}", "replies_outbox": f"test.replies.{suffix}"}
    )
    destination = "/queue/queue.searchContact_1_1"
    invalid = {"message-id": f"ID:refused-{suffix}:1:1:1:1", "destination": destination}
    invalid_body = json.dumps(search("queue.reply.refused", userName="")).encode()
    unanswerable = {"message-id": f"ID:unanswerable-{suffix}:1:1:1:1", "destination": destination}
    unanswerable_body = b"not JSON, so no reply queue to answer on"
    by_server = "/queue/queue.searchContact_1"  # the bridge finds the account's child in the registry
    valid = {"message-id": f"ID:accepted-{suffix}:1:1:1:1", "destination": by_server}
    valid_body = json.dumps(search("queue.reply.refused")).encode()
    with refusing_bridge(settings, own_broker) as (bridge, client, dlq):
        refused = bridge.inbound.handle(destination, invalid, invalid_body)
        assert isinstance(refused, Refused)
        for _ in range(2):
            bridge.refuse(invalid, invalid_body, refused)
        unanswered = bridge.inbound.handle(destination, unanswerable, unanswerable_body)
        assert isinstance(unanswered, Refused) and unanswered.reply() is None
        for _ in range(2):
            bridge.refuse(unanswerable, unanswerable_body, unanswered)
        assert isinstance(bridge.inbound.handle(by_server, valid, valid_body), Accepted)  # its task is sent
        stack.r.delete(f"contactq:account:{A['uin']}")  # the account went offline before the copy came
        copy = bridge.inbound.handle(by_server, valid, valid_body)
        assert isinstance(copy, Refused) and copy.status == 503
        bridge.refuse(valid, valid_body, copy)
        dead = client.take(dlq, count=2)
        with pytest.raises(AssertionError):
            client.take(dlq, timeout_s=2)
    assert [h["contactq-original-message-id"] for h, _ in dead] == [invalid["message-id"], unanswerable["message-id"]]
    replies = RepliesTap(stack.r, settings.replies_outbox).take()
    assert [(r["correlationId"], r["reply"]["status"]) for _, r in replies] == [(invalid["message-id"], 400)]
    record(
        Figures(
            "refused messages delivered again (one with no reply queue); a copy of an accepted one refused",
            sent=5,
            replies=len(replies),
            dead_letters=len(dead),
        )
    )


def test_while_redis_is_full_a_refused_message_with_no_reply_is_still_acknowledged(
    broker: None, stack: Stack, own_broker: str
) -> None:
    """Its answered mark only spares a copy a second dead letter: holding the message for it would dead-letter it
    again at every redelivery while Redis refuses writes. A refusal with a reply owed stays unacknowledged."""
    suffix = uuid.uuid4().hex[:8]
    private = PrivateRedis()
    private.start()
    settings = stack.settings.model_copy(
        update={"store_url": private.url(0), "bridge_deadletter_queue": f"test.dlq.{suffix}"}
    )
    destination = "/queue/queue.searchContact_1_1"
    try:
        with refusing_bridge(settings, own_broker) as (bridge, client, dlq):
            private.set_maxmemory(1)  # every write refused, as by a Redis out of memory
            silent = {"message-id": f"ID:silent-{suffix}:1:1:1:1", "destination": destination}
            bridge.refuse(silent, b"not JSON", Refused(Status.INVALID_REQUEST, "not JSON", None, "searchContact"))
            owed = {"message-id": f"ID:owed-{suffix}:1:1:1:1", "destination": destination}
            refused = Refused(Status.INVALID_REQUEST, "no userName", search("queue.reply.owed"), "searchContact")
            with pytest.raises(StoreUnavailable):
                bridge.refuse(owed, json.dumps(search("queue.reply.owed")).encode(), refused)
            dead = client.take(dlq, count=2)
    finally:
        private.stop()
    assert [h["contactq-original-message-id"] for h, _ in dead] == [silent["message-id"], owed["message-id"]]


@pytest.mark.skipif(BROKER != "redis", reason="RabbitMQ loses no message between delivery and acknowledgement")
def test_a_request_the_broker_lost_is_sent_again(
    amq: Stomp, stack: Stack, bridge: BridgeProcess, workers: list[Worker]
) -> None:
    """A worker killed between kombu's BRPOP and its record of the message as unacknowledged takes the message with
    it: played here by taking the message out of its Redis list, as that worker did, while no worker consumes it."""
    queue, child1 = "queue.searchContact_1_1", [workers[0].hostname]
    answer_to = f"queue.reply.{uuid.uuid4().hex[:8]}"
    amq.listen(f"/queue/{answer_to}")
    broker = redis.Redis.from_url(stack.settings.broker_url)
    stack.app.control.cancel_consumer(queue, destination=child1, reply=True)
    try:
        amq.send(f"/queue/{queue}", json.dumps(search(answer_to, lost=True)))
        deadline = time.monotonic() + 20
        while (taken := broker.rpop(queue)) is None:
            assert time.monotonic() < deadline, "the request never reached its queue"
            time.sleep(0.01)
        lost_at = time.monotonic()
    finally:
        stack.app.control.add_consumer(queue, destination=child1, reply=True)
    assert b"lost" in taken
    [(headers, reply)] = amq.take_json(f"/queue/{answer_to}", timeout_s=30)
    recovery_s = time.monotonic() - lost_at
    assert (reply["status"], reply["lost"]) == (0, True) and headers["correlation-id"].startswith("ID:")
    with pytest.raises(AssertionError):  # answered once
        amq.take(f"/queue/{answer_to}", timeout_s=2)
    assert Ledger(stack.r, stack.settings).watched() == 0
    assert Counters(stack.r).read()["recovered"] == {("searchContact",): 1}
    record(
        Figures("message lost between BRPOP and unacked", sent=1, replies=1, recovery_s=recovery_s),
        normal_after=normal_traffic_flows(amq),
    )
