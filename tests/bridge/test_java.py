"""Interop with the legacy Java platform: Spring's JmsTemplate sends every operation exactly as the seed's examples do,
as a HashMap (MapMessage) and as a JSON string (TextMessage); a Java consumer reads the replies and the topics."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest

from protocol.friend_request import parse_friend_request
from tests.bridge.conftest import BridgeProcess
from tests.stack import ACCOUNT_A, ACCOUNT_B, ROOT, Stack

A, B = ACCOUNT_A, ACCOUNT_B
NICOLE, ZENG, YANG = "wxid_8fseov8qf5di22", "wxid_l1k2j3h4g5f6d7", "wxid_k1l2z3x4c5v6b7"
ROOM = "18839427610@chatroom"
TOPICS = "topic.getcontact,topic.modcontact,topic.modifycontact,topic.delcontact,topic.chatroommember"


def java(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(ROOT / "tests/java/run.sh"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def send(queue: str, kind: str, request: dict[str, Any]) -> str:
    [sent] = java("send", queue, kind, json.dumps(request, ensure_ascii=False))
    return str(sent["sent"])


class Subscriber:
    """A Java consumer of the four topics, collecting what it prints."""

    def __init__(self, count: int, timeout_s: int = 90, topics: str = TOPICS) -> None:
        self.proc = subprocess.Popen(
            [str(ROOT / "tests/java/run.sh"), "subscribe", topics, str(count), str(timeout_s)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}
        self.events: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def wait(self) -> list[dict[str, Any]]:
        self.proc.wait(timeout=120)
        self.reader.join(timeout=5)
        return self.events


def check_reply(message: dict[str, Any], sent_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """A reply as the Java side gets it: a persistent TextMessage, correlated, echoing the request unchanged."""
    assert (message["type"], message["persistent"], message["correlationId"]) == ("TextMessage", True, sent_id)
    reply: dict[str, Any] = json.loads(message["text"])
    assert {k: reply[k] for k in request} == request
    assert (reply["status"], reply["message"]) == (0, "")
    return reply


@pytest.mark.parametrize("kind", ["map", "text"])
def test_every_operation_from_spring_jms_template(kind: str, stack: Stack, bridge: BridgeProcess) -> None:
    replies = f"queue.receive.{kind}"
    # 16 getcontact + 2 chatroommember (sync); modcontact for getContact, modifyName, addNew on both sides, the
    # chatroom request when sent and when 杨过 accepts it; modifycontact (the seed's other name) for modifyName and the
    # chatroom request twice.
    subscriber = Subscriber(count=18 + 6 + 3)

    send("queue.syncContact_1", kind, {"loginer": 18, "uin": A["uin"]})
    send("queue.getContact_1", kind, {"adminUserId": 18, "uin": A["uin"], "userName": NICOLE})
    send(
        "queue.modifyName_1_1",
        kind,
        {
            "uin": A["uin"],
            "userName": ZENG,
            "loginer": 18,
            "newRemarkName": "曾老师",
            "wechatUser": json.dumps({"uin": A["uin"], "userName": A["wxid"]}),
        },
    )

    search = {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": replies}
    search_id = send("queue.searchContact_1", kind, search)
    [message] = java("receive", replies, "1", "30")
    found = check_reply(message, search_id, search)
    assert (found["nick_name"], found["quan_pin"]) == ("运营二号", "yunyingerhao")

    add = {
        "adminUserId": 18,
        "uin": A["uin"],
        "userName": "ops_two",
        "v1": found["user_name"],
        "v2": found["stranger"],
        "verify": "你好",
        "type": 3,
        "queueName": replies,
    }
    add_id = send("queue.addContact_1", kind, add)
    [message] = java("receive", replies, "1", "30")
    check_reply(message, add_id, add)
    [xml] = stack.sim.pending_requests(B["wxid"])
    request = parse_friend_request(xml)
    send(
        "queue.addNew_1_2",
        kind,
        {
            "loginer": 18,
            "uin": B["uin"],
            "userName": request.encryptusername,
            "opcode": 3,
            "wechatUser": "{}",
            "verifyContent": "",
            "verifyUserTicket": request.ticket,
            "type": request.scene,
        },
    )
    room_add = {
        "loginer": 18,
        "uin": A["uin"],
        "userName": YANG,
        "chatRoomName": ROOM,
        "verify": "群里见过",
        "queueName": replies,
    }
    room_add_id = send("queue.addChatRoomContact1_1", kind, room_add)
    member = {"adminUserId": 18, "uin": A["uin"], "userName": YANG, "chatRoomName": ROOM, "queueName": replies}
    member_id = send("queue.getContact_1_1", kind, member)

    answers = {m["correlationId"]: m for m in java("receive", replies, "2", "30")}
    check_reply(answers[room_add_id], room_add_id, room_add)
    assert check_reply(answers[member_id], member_id, member)["contact"]["NickName"] == "杨过"

    events = subscriber.wait()
    seen = sorted((e["destination"], json.loads(e["text"])["uin"], json.loads(e["text"])["field"]) for e in events)
    assert len([s for s in seen if s[0] == "topic.getcontact"]) == 16
    expected = [
        ("topic.chatroommember", A["uin"], "18839427610@chatroom"),
        ("topic.chatroommember", A["uin"], "20971512345@chatroom"),
        ("topic.modcontact", A["uin"], B["wxid"]),
        ("topic.modcontact", A["uin"], NICOLE),
        ("topic.modcontact", A["uin"], YANG),
        ("topic.modcontact", A["uin"], YANG),
        ("topic.modcontact", A["uin"], ZENG),
        ("topic.modcontact", B["uin"], A["wxid"]),
        ("topic.modifycontact", A["uin"], YANG),
        ("topic.modifycontact", A["uin"], YANG),
        ("topic.modifycontact", A["uin"], ZENG),
    ]
    assert [s for s in seen if s[0] != "topic.getcontact"] == sorted(expected)
    for event in events:
        assert (event["type"], event["persistent"]) == ("TextMessage", True)
        payload = json.loads(event["text"])
        assert set(payload) == {"uin", "userName", "loginer", "field", "mqType", "source"}
        assert (payload["loginer"], payload["source"]) == ("18", "ipad")
        # What the Java side does next: read the record the event points to.
        record = stack.r.hget(f"{payload['uin']}:wechatContact:{payload['userName']}", payload["field"])
        assert record is not None and json.loads(record)["UserName"] == payload["field"]
    zeng = json.loads(stack.r.hget(f"{A['uin']}:wechatContact:{A['wxid']}", ZENG) or "{}")
    assert (zeng["RemarkName"], zeng["RemarkPYQuanPin"], zeng["RemarkPYInitial"]) == ("曾老师", "cenglaoshi", "CLS")


def test_the_seed_contract_to_the_letter_from_spring_jms_template(stack: Stack, bridge: BridgeProcess) -> None:
    """The topic.modifycontact alias, a scene outside the nine named ones, every reply field on failure, and the
    contacts announced at login, as a Java producer and consumer see them."""
    replies = "queue.receive.seed"
    friends = sorted(name for name in stack.sim.contacts_of(A["wxid"]) if not name.endswith("@chatroom"))
    subscriber = Subscriber(count=1 + len(friends), topics="topic.modifycontact,topic.getcontact")

    send("queue.modifyName_1_1", "map", {"uin": A["uin"], "userName": ZENG, "loginer": 18, "newRemarkName": "曾老师"})

    missing = {"adminUserId": 18, "uin": A["uin"], "userName": "nobody_at_all", "queueName": replies}
    missing_id = send("queue.searchContact_1", "map", missing)
    [message] = java("receive", replies, "1", "30")
    assert message["correlationId"] == missing_id
    reply = json.loads(message["text"])
    assert reply == {**missing, "status": 404, "message": reply["message"]} | dict.fromkeys(
        ("user_name", "stranger", "nick_name", "small_head", "quan_pin"), ""
    )

    add = stack.add_contact_request("xiaolongnv") | {"type": 17, "queueName": replies}
    add_id = send("queue.addContact_1_1", "map", add)
    [message] = java("receive", replies, "1", "30")
    assert check_reply(message, add_id, add)["type"] == 17
    assert stack.sim.verify_log() == [[A["uin"], 2, "wxid_a9s8d7f6g5h4j3", 17]]

    stack.sim.set_online(A["uin"], False)
    stack.sim.set_online(A["uin"], True)

    events = [(e["destination"], json.loads(e["text"])) for e in subscriber.wait()]
    assert [(d, e["field"]) for d, e in events if d == "topic.modifycontact"] == [("topic.modifycontact", ZENG)]
    assert sorted(e["field"] for d, e in events if d == "topic.getcontact") == friends
