"""Across children and from WeChat's side: the two-child friend flow, and changes WeChat pushes."""

from __future__ import annotations

import time
from typing import Any

from kombu import Connection, Queue

from protocol.friend_request import parse_friend_request
from tasks.metrics import Counters
from tasks.outbox import events_exchange
from tests.conftest import GEWE
from tests.stack import ACCOUNT_A, ACCOUNT_B, Stack, Tap, Worker, caller_app

A, B = ACCOUNT_A, ACCOUNT_B
ROOM = "20971512345@chatroom"  # both A and B are in it


def payload(account: dict[str, Any], field: str, mq_type: int) -> dict[str, Any]:
    return {
        "uin": account["uin"],
        "userName": account["wxid"],
        "loginer": "18",
        "field": field,
        "mqType": mq_type,
        "source": "ipad",
    }


def test_account_on_child_1_adds_account_on_child_2(stack: Stack) -> None:
    # A (child 1) searches B by WeChat ID, routed by A's uin through the account registry.
    found = stack.call("searchContact", {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": "q"})
    assert found["status"] == 0 and found["nick_name"] == "运营二号"
    added = stack.call(
        "addContact",
        {
            "adminUserId": 18,
            "uin": A["uin"],
            "userName": "ops_two",
            "v1": found["user_name"],
            "v2": found["stranger"],
            "verify": "我是运营一号",
            "type": 3,
            "queueName": "q",
        },
    )
    assert added["status"] == 0

    # B (child 2) receives the request XML, as the message module would hand it over, and accepts it.
    [xml] = stack.sim.pending_requests(B["wxid"])
    request = parse_friend_request(xml)
    assert (request.fromusername, request.fromnickname, request.content) == (A["wxid"], "运营一号", "我是运营一号")
    accepted = stack.call("addNew", {"loginer": 18, "uin": B["uin"], **request.add_new_fields()}, child=2)
    assert accepted["status"] == 0 and accepted["field"] == A["wxid"]

    # Both stores hold the other, and each side is announced once: B's by the addNew, A's by WeChat's push.
    events = stack.events.wait(lambda got: len(got) >= 2)
    assert sorted(events, key=lambda e: e[1]["uin"]) == [
        ("topic.modcontact", payload(A, B["wxid"], 3)),
        ("topic.modcontact", payload(B, A["wxid"], 3)),
    ]
    assert stack.contact(A, B["wxid"])["NickName"] == "运营二号"  # type: ignore[index]
    assert stack.contact(B, A["wxid"])["NickName"] == "运营一号"  # type: ignore[index]
    assert stack.sim.verify_log() == [[A["uin"], 2, B["wxid"], 3], [B["uin"], 3, A["wxid"], 0]]


def test_a_received_friend_request_is_kept_until_accepted(stack: Stack) -> None:
    added = stack.call("addContact", stack.add_contact_request("ops_two"))
    assert added["status"] == 0
    # WeChat pushes the request to B (over HTTP: posted as an AddMsg of type 37 to the callbacks endpoint).
    deadline = time.monotonic() + 15
    while not (kept := stack.store.friend_requests(B["uin"], B["wxid"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kept == {A["wxid"]: stack.sim.pending_requests(B["wxid"])[0]}
    request = parse_friend_request(kept[A["wxid"]])
    accepted = stack.call("addNew", {"loginer": 18, "uin": B["uin"], **request.add_new_fields()}, child=2)
    assert accepted["status"] == 0
    assert stack.store.friend_requests(B["uin"], B["wxid"]) == {}
    # The request's push, come again (or late, should the platform have learnt of it another way), waits no more.
    again = {"id": "1-1", "uin": B["uin"], "child_id": 2, "kind": "request", "username": A["wxid"]}
    handled = stack.call("pushedChange", {**again, "content": kept[A["wxid"]]}, child=2)
    assert handled["change"] == "accepted already"
    assert stack.store.friend_requests(B["uin"], B["wxid"]) == {}
    if GEWE:
        # The new friend's callback is posted by the server's own thread, maybe after the addNew's answer.
        deadline = time.monotonic() + 15
        while ("ModContacts", "accepted") not in (counted := Counters(stack.r).read()["callbacks"]):
            assert time.monotonic() < deadline, counted
            time.sleep(0.05)
        assert counted[("AddMsg", "accepted")] == 1 and counted[("ModContacts", "accepted")] >= 1


def synced(stack: Stack, account: dict[str, Any]) -> None:
    """A full sync, with every event it announced taken: on RabbitMQ the last ones may be routed after its reply."""
    reply = stack.call("syncContact", {"loginer": 18, "uin": account["uin"]})
    count = reply["contacts"] + reply["chatrooms"] + reply["removed"]
    stack.events.wait(lambda got: len(got) >= count)


def test_friend_renamed_and_deleted_on_wechat_side(stack: Stack) -> None:
    friend = "wxid_s1d2f3g4h5j6k7"  # 王小二, a friend of both A and B
    for account in (A, B):
        synced(stack, account)

    stack.sim.rename(friend, "王大二")
    events = stack.events.wait(lambda got: len(got) >= 2)
    assert sorted(events, key=lambda e: e[1]["uin"]) == [
        ("topic.modcontact", payload(A, friend, 3)),
        ("topic.modcontact", payload(B, friend, 3)),
    ]
    assert stack.contact(A, friend)["PYQuanPin"] == "wangdaer"  # type: ignore[index]

    stack.sim.delete_account(friend)
    events = stack.events.wait(lambda got: len(got) >= 2)
    assert sorted(events, key=lambda e: e[1]["uin"]) == [
        ("topic.delcontact", payload(A, friend, 4)),
        ("topic.delcontact", payload(B, friend, 4)),
    ]
    assert stack.contact(A, friend) is None and stack.contact(B, friend) is None


def test_chatroom_gains_and_loses_members(stack: Stack) -> None:
    synced(stack, A)
    newcomer = "wxid_k1l2z3x4c5v6b7"
    stack.sim.add_member(ROOM, newcomer)
    events = stack.events.wait(lambda got: len(got) >= 2)
    assert ("topic.chatroommember", payload(A, ROOM, 5)) in events
    assert ("topic.chatroommember", payload(B, ROOM, 5)) in events
    assert newcomer in stack.store.members(A["uin"], ROOM)

    stack.sim.remove_member(ROOM, newcomer)
    stack.events.wait(lambda got: len(got) >= 2)
    assert newcomer not in stack.store.members(A["uin"], ROOM)

    # A itself leaves: the chatroom is gone from A's list, while B still sees it.
    stack.sim.remove_member(ROOM, A["wxid"])
    events = stack.events.wait(lambda got: len(got) >= 2)
    assert ("topic.delcontact", payload(A, ROOM, 4)) in events
    assert ("topic.chatroommember", payload(B, ROOM, 5)) in events
    assert stack.contact(A, ROOM) is None and stack.store.members(A["uin"], ROOM) == {}


def test_owner_deletes_a_friend_on_the_phone(stack: Stack) -> None:
    synced(stack, A)
    stack.sim.unfriend(A["wxid"], "wxid_8fseov8qf5di22")
    assert stack.events.wait(lambda got: len(got) >= 1) == [("topic.delcontact", payload(A, "wxid_8fseov8qf5di22", 4))]
    assert stack.contact(A, "wxid_8fseov8qf5di22") is None


def test_an_account_coming_online_is_synced_and_announced(stack: Stack) -> None:
    contacts = stack.sim.contacts_of(A["wxid"])
    friends = sorted(name for name in contacts if not name.endswith("@chatroom"))
    rooms = sorted(name for name in contacts if name.endswith("@chatroom"))
    stack.sim.set_online(A["uin"], False)
    stack.sim.set_online(A["uin"], True)  # WeChat pushes the login; A's worker syncs it (the seed's login init)
    events = stack.events.wait(lambda got: len(got) >= len(contacts), timeout_s=30)
    assert sorted(e["field"] for topic, e in events if topic == "topic.getcontact") == friends
    assert sorted(e["field"] for topic, e in events if topic == "topic.chatroommember") == rooms
    assert all(e == payload(A, e["field"], e["mqType"]) for _, e in events)
    assert all(stack.contact(A, name) is not None for name in contacts)
    # Coming online again while online pushes nothing.
    stack.sim.set_online(A["uin"], True)
    assert stack.events.wait(lambda got: True, quiet_s=1.5) == []


def test_the_reserved_topic_announces_chatroom_changes_when_configured(stack: Stack, own_broker: str) -> None:
    worker = Worker(
        "modchatroommember", [1], {"CONTACTQ_BROKER_URL": own_broker, "CONTACTQ_EMIT_MODCHATROOMMEMBER": "1"}
    )
    worker.start()
    try:
        worker.wait_ready()
        with Connection(own_broker) as conn:
            events = Tap(conn, Queue("test.own.events", events_exchange(stack.settings), routing_key="topic.#"))
            change = {"id": "1-0", "uin": A["uin"], "child_id": 1, "kind": "chatroom", "username": ROOM}
            done = caller_app(own_broker).send_task(
                "contactq.pushedChange", args=[change], queue="queue.pushedChange_1_1"
            )
            assert done.get(timeout=20)["change"] == "chatroom"
            got = events.wait(lambda got: len(got) >= 2)
    finally:
        worker.stop()
    assert sorted(got) == [
        ("topic.chatroommember", payload(A, ROOM, 5)),
        ("topic.modchatroommember", payload(A, ROOM, 5)),
    ]
