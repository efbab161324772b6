"""The seed's contract to the letter, as a STOMP producer and consumer on ActiveMQ sees it: the topic.modifycontact
alias, any scene WeChat uses, every reply field on failure, and the contacts announced at login."""

from __future__ import annotations

import json
import uuid

from tests.bridge.conftest import Stomp
from tests.stack import ACCOUNT_A, Stack

A = ACCOUNT_A
ZENG, YANG = "wxid_l1k2j3h4g5f6d7", "wxid_k1l2z3x4c5v6b7"
ROOM = "18839427610@chatroom"
SEARCH_FIELDS = ("user_name", "stranger", "nick_name", "small_head", "quan_pin")


def reply_queue() -> str:
    return f"queue.reply.{uuid.uuid4().hex[:8]}"


def test_modify_name_is_announced_on_both_names_of_the_topic(amq: Stomp) -> None:
    amq.listen("/topic/topic.modcontact")
    amq.listen("/topic/topic.modifycontact")
    request = {"loginer": 18, "uin": A["uin"], "userName": ZENG, "newRemarkName": "曾老师", "wechatUser": "{}"}
    amq.send("/queue/queue.modifyName_1_1", json.dumps(request))
    [(_, seed_name)] = amq.take_json("/topic/topic.modifycontact")
    [(_, listed_name)] = amq.take_json("/topic/topic.modcontact")
    assert (
        seed_name
        == listed_name
        == {
            "uin": A["uin"],
            "userName": A["wxid"],
            "loginer": "18",
            "field": ZENG,
            "mqType": 3,
            "source": "ipad",
        }
    )


def test_add_chatroom_contact_is_announced_when_sent_and_when_accepted(amq: Stomp) -> None:
    answer_to = reply_queue()
    amq.listen(f"/queue/{answer_to}")
    amq.listen("/topic/topic.modifycontact")
    request = {
        "loginer": 18,
        "uin": A["uin"],
        "userName": YANG,
        "chatRoomName": ROOM,
        "verify": "群里见过",
        "queueName": answer_to,
    }
    amq.send("/queue/queue.addChatRoomContact1_1", json.dumps(request))
    [(_, reply)] = amq.take_json(f"/queue/{answer_to}")
    assert reply == {**request, "status": 0, "message": ""}
    # 杨过 accepts at once: announced when the request is sent, and again as the new friend WeChat pushes.
    events = [event for _, event in amq.take_json("/topic/topic.modifycontact", count=2)]
    assert [(e["field"], e["mqType"]) for e in events] == [(YANG, 3)] * 2


def test_any_scene_wechat_uses_passes_through(amq: Stomp, stack: Stack) -> None:
    answer_to = reply_queue()
    amq.listen(f"/queue/{answer_to}")
    request = stack.add_contact_request("xiaolongnv") | {"type": 17, "queueName": answer_to}
    amq.send("/queue/queue.addContact_1_1", json.dumps(request))
    [(_, reply)] = amq.take_json(f"/queue/{answer_to}")
    assert reply == {**request, "status": 0, "message": ""}
    assert stack.sim.verify_log() == [[A["uin"], 2, "wxid_a9s8d7f6g5h4j3", 17]]


def test_a_failed_search_carries_every_reply_field(amq: Stomp) -> None:
    answer_to = reply_queue()
    amq.listen(f"/queue/{answer_to}")
    not_found = {"adminUserId": 18, "uin": A["uin"], "userName": "nobody_at_all", "queueName": answer_to}
    refused = {"adminUserId": 18, "uin": A["uin"], "userName": "wxid_not_searchable", "queueName": answer_to}
    amq.send("/queue/queue.searchContact_1_1", json.dumps(not_found))  # answered by the task
    [(_, by_task)] = amq.take_json(f"/queue/{answer_to}")
    amq.send("/queue/queue.searchContact_1_1", json.dumps(refused))  # refused by the bridge
    [(_, by_bridge)] = amq.take_json(f"/queue/{answer_to}")
    assert by_task == {**not_found, "status": 404, "message": by_task["message"]} | dict.fromkeys(SEARCH_FIELDS, "")
    assert by_bridge == {**refused, "status": 400, "message": by_bridge["message"]} | dict.fromkeys(SEARCH_FIELDS, "")


def test_contacts_are_announced_when_an_account_comes_online(amq: Stomp, stack: Stack) -> None:
    amq.listen("/topic/topic.getcontact")
    expected = {name for name in stack.sim.contacts_of(A["wxid"]) if not name.endswith("@chatroom")}
    stack.sim.set_online(A["uin"], False)
    stack.sim.set_online(A["uin"], True)
    events = [event for _, event in amq.take_json("/topic/topic.getcontact", count=len(expected), timeout_s=30)]
    assert {e["field"] for e in events} == expected and len(events) == len(expected)
    assert {(e["uin"], e["userName"], e["mqType"]) for e in events} == {(A["uin"], A["wxid"], 7)}
    assert all(stack.contact(A, e["field"]) is not None for e in events)
