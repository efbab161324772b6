"""The bridge with a real ActiveMQ: requests in every shape, replies and events out, bad input dead-lettered."""

from __future__ import annotations

import json
import time
import uuid

from tasks.metrics import Counters
from tests.bridge.conftest import BridgeProcess, Stomp, activemq, broker_answers
from tests.faults import Figures, record
from tests.stack import ACCOUNT_A, ACCOUNT_B, Stack

A, B = ACCOUNT_A, ACCOUNT_B
DLQ = "/queue/DLQ.contactq"
SEARCH_FIELDS_EMPTY = dict.fromkeys(("user_name", "stranger", "nick_name", "small_head", "quan_pin"), "")


def reply_queue() -> str:
    return f"queue.reply.{uuid.uuid4().hex[:8]}"


def test_text_message_search_is_answered_as_a_text_message(amq: Stomp) -> None:
    answer_to = reply_queue()
    amq.listen(f"/queue/{answer_to}")
    request = {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": answer_to}
    amq.send("/queue/queue.searchContact_1_1", json.dumps(request))
    [(headers, body)] = amq.take(f"/queue/{answer_to}")
    assert "content-length" not in headers  # a TextMessage
    reply = json.loads(body)
    assert {k: reply[k] for k in request} == request
    assert reply["status"] == 0 and reply["nick_name"] == "运营二号" and reply["user_name"].startswith("v1_")
    assert headers["correlation-id"].startswith("ID:")  # the request's JMS message id
    assert headers["persistent"] == "true"


def test_bytes_message_and_the_seed_spelling_without_child(amq: Stomp) -> None:
    answer_to = reply_queue()
    amq.listen(f"/queue/{answer_to}")
    body = json.dumps({"adminUserId": 18, "uin": B["uin"], "userName": "ops_one", "queueName": answer_to}).encode()
    # queue.searchContact_1 has no child: the request goes to the child that hosts B, child 2.
    amq.send("/queue/queue.searchContact_1", body, **{"content-length": str(len(body))})
    [(_, reply)] = amq.take_json(f"/queue/{answer_to}")
    assert reply["status"] == 0 and reply["nick_name"] == "运营一号"


def test_events_reach_the_activemq_topics(amq: Stomp) -> None:
    amq.listen("/topic/topic.modcontact")
    amq.send(
        "/queue/queue.getContact_1_1",
        json.dumps({"adminUserId": 18, "uin": A["uin"], "userName": "wxid_8fseov8qf5di22"}),
    )
    [(headers, event)] = amq.take_json("/topic/topic.modcontact")
    assert event == {
        "uin": A["uin"],
        "userName": A["wxid"],
        "loginer": "18",
        "field": "wxid_8fseov8qf5di22",
        "mqType": 3,
        "source": "ipad",
    }
    assert "content-length" not in headers


def test_invalid_request_is_answered_and_dead_lettered(amq: Stomp, stack: Stack) -> None:
    answer_to = reply_queue()
    amq.listen(f"/queue/{answer_to}")
    amq.listen(DLQ)
    request = {"adminUserId": 18, "uin": A["uin"], "userName": "wxid_b7q2m0x1kk9922", "queueName": answer_to}
    body = json.dumps(request)
    marker = amq.send("/queue/queue.searchContact_1_1", body, **{"x-origin": "platform"})
    [(_, reply)] = amq.take_json(f"/queue/{answer_to}")
    assert reply == {**request, "status": 400, "message": reply["message"]} | SEARCH_FIELDS_EMPTY
    assert "wxid_" in reply["message"]
    [(headers, dead)] = amq.take_marked(DLQ, {marker})
    assert dead.decode() == body  # untouched
    assert headers["contactq-original-destination"] == "queue.searchContact_1_1"
    assert "wxid_" in headers["contactq-reason"] and headers["x-origin"] == "platform"
    assert Counters(stack.r).read()["dead_lettered"] == {("bridge",): 1}


def test_undecodable_and_oversized_messages_are_dead_lettered(amq: Stomp, bridge: BridgeProcess) -> None:
    amq.listen(DLQ)
    markers = {
        amq.send("/queue/queue.addContact_1_1", "this is not json"),
        amq.send("/queue/queue.addContact_1_1", json.dumps({"uin": A["uin"], "pad": "x" * 70_000})),
        amq.send("/queue/queue.syncContact_1", json.dumps({"loginer": 18, "uin": "999"})),  # no such account
    }
    reasons = " | ".join(h["contactq-reason"] for h, _ in amq.take_marked(DLQ, markers))
    assert "not JSON" in reasons and "larger than" in reasons and "uin 999 is not logged in" in reasons
    assert bridge.proc is not None and bridge.proc.poll() is None  # still running


def test_nothing_is_lost_while_activemq_is_down(amq: Stomp, stack: Stack, bridge: BridgeProcess) -> None:
    amq.close()
    activemq("down")
    try:
        assert not broker_answers(), "ActiveMQ still runs: it was not started from this checkout, so it was not stopped"
        # Work done meanwhile by Python callers: its replies and events wait in Redis.
        reply = stack.call(
            "getContact",
            {
                "adminUserId": 18,
                "uin": A["uin"],
                "userName": "wxid_8fseov8qf5di22",
                "queueName": "queue.reply.while-down",
            },
        )
        assert reply["status"] == 0
    finally:
        restarted_at = time.time()
        activemq("up")
    bridge.wait_connected(after=restarted_at)
    client = Stomp()
    try:
        client.listen("/queue/queue.reply.while-down")
        [(_, late)] = client.take_json("/queue/queue.reply.while-down", timeout_s=60)
        assert late == reply
        record(Figures("ActiveMQ stopped, a reply waiting", sent=1, replies=1))
        reconnections = Counters(stack.r).read()["bridge_reconnections"]
        assert reconnections[("requests",)] >= 1 and reconnections[("replies",)] >= 1
    finally:
        client.close()
