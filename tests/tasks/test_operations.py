"""Every operation through real workers: success, WeChat's failures, and bad input."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis
from redis.client import Monitor

from protocol.friend_request import parse_friend_request
from tasks.metrics import Counters
from tests.conftest import GEWE
from tests.stack import ACCOUNT_A, ACCOUNT_B, Stack

A, B = ACCOUNT_A, ACCOUNT_B
NICOLE = "wxid_8fseov8qf5di22"  # A's friend, remark 淑萍
ZENG = "wxid_l1k2j3h4g5f6d7"  # A's friend 曾经的少年, remark 曾老师
ROOM = "18839427610@chatroom"  # A is in it; 杨过 (auto-accept) and 小龙女 (by hand) are members, not friends
YANG = "wxid_k1l2z3x4c5v6b7"


def a(**fields: Any) -> dict[str, Any]:
    return {"adminUserId": 18, "uin": A["uin"], **fields}


def room_add(**fields: Any) -> dict[str, Any]:
    """An addChatRoomContact request from A to 杨过, met in ROOM; `fields` replace its own."""
    return {
        "loginer": 18,
        "uin": A["uin"],
        "userName": YANG,
        "chatRoomName": ROOM,
        "verify": "hi",
        "queueName": "q",
        **fields,
    }


def event(kind: str, field: str, account: dict[str, Any] = A) -> tuple[str, dict[str, Any]]:
    mq = {"getcontact": 7, "modcontact": 3, "modifycontact": 3, "delcontact": 4, "chatroommember": 5}[kind]
    payload = {
        "uin": account["uin"],
        "userName": account["wxid"],
        "loginer": "18",
        "field": field,
        "mqType": mq,
        "source": "ipad",
    }
    return f"topic.{kind}", payload


# -- searchContact ------------------------------------------------------------------------------------------------


def test_search_contact_replies_with_v1_v2_and_profile(stack: Stack) -> None:
    request = a(userName="ops_two", queueName="queue.reply.search", extra="kept")
    result = stack.submit("searchContact", request)
    reply = result.get(timeout=20)
    assert {k: reply[k] for k in request} == request  # the request comes back unchanged
    assert (reply["status"], reply["message"], reply["nick_name"], reply["quan_pin"]) == (
        0,
        "",
        "运营二号",
        "yunyingerhao",
    )
    assert reply["user_name"].startswith("v1_") and reply["stranger"].startswith("v2_")
    assert reply["small_head"].startswith("http://")
    [(_, outbox)] = stack.replies.wait(lambda got: len(got) >= 1)
    assert outbox == {"queueName": "queue.reply.search", "correlationId": result.id, "reply": reply}


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"userName": "nobody-here", "queueName": "q"}, 404, "no WeChat user"),
        ({"userName": "wxid_b7q2m0x1kk9922", "queueName": "q"}, 400, "wxid_ id cannot be searched"),
        ({"userName": "ops_two"}, 400, "queueName"),
        ({"queueName": "q"}, 400, "userName"),
        ({"userName": ["ops_two"], "queueName": "q"}, 400, "userName"),
    ],
)
def test_search_contact_failures(stack: Stack, fields: dict[str, Any], status: int, message: str) -> None:
    reply = stack.call("searchContact", a(**fields))
    assert reply["status"] == status and message in reply["message"]
    # Every field of the seed's reply, empty: a Java consumer reading them before the status never gets null.
    assert {k: reply[k] for k in ("user_name", "stranger", "nick_name", "small_head", "quan_pin")} == dict.fromkeys(
        ("user_name", "stranger", "nick_name", "small_head", "quan_pin"), ""
    )


def test_account_on_another_child_is_not_online_here(stack: Stack) -> None:
    reply = stack.call("searchContact", a(userName="ops_two", queueName="q"), child=2)
    assert reply["status"] == 503 and "child 1" in reply["message"]
    stack.sim.set_online(A["uin"], False)
    assert stack.call("searchContact", a(userName="ops_two", queueName="q"))["status"] == 503


def test_wechat_too_frequent_maps_to_429(stack: Stack) -> None:
    stack.sim.set_faults(too_frequent=1)
    reply = stack.call("searchContact", a(userName="ops_two", queueName="q"))
    assert reply["status"] == 429 and "1205" in reply["message"]


def test_transient_errors_are_retried(stack: Stack) -> None:
    stack.sim.set_faults(transient=2)
    reply = stack.call("searchContact", a(userName="ops_two", queueName="q"))
    assert reply["status"] == 0
    assert stack.deadletters.take() == []


def test_out_of_retries_is_answered_and_dead_lettered(stack: Stack) -> None:
    stack.sim.set_faults(transient=10)
    request = a(userName="ops_two", queueName="q")
    reply = stack.call("searchContact", request, timeout_s=40)
    assert reply["status"] == 504 and "gave up after 3 retries" in reply["message"]
    [(_, dead)] = stack.deadletters.wait(lambda got: len(got) >= 1)
    assert dead == {
        "task": "contactq.searchContact",
        "queue": "queue.searchContact_1_1",
        "request": request,
        "status": 504,
        "reason": reply["message"],
    }


def test_request_that_is_not_a_map_is_answered(stack: Stack) -> None:
    result = stack.app.send_task("contactq.searchContact", args=["not json"], queue="queue.searchContact_1_1")
    assert result.get(timeout=20) == {"status": 400, "message": "a request is a JSON object, not str"} | dict.fromkeys(
        ("user_name", "stranger", "nick_name", "small_head", "quan_pin"), ""
    )


# -- getContact ---------------------------------------------------------------------------------------------------


def test_get_contact_stores_and_announces(stack: Stack) -> None:
    reply = stack.call("getContact", a(userName=NICOLE))
    assert reply["status"] == 0 and reply["contact"]["RemarkPYQuanPin"] == "shuping"
    assert stack.contact(A, NICOLE) == reply["contact"]
    events = stack.events.wait(lambda got: len(got) >= 1)
    assert events == [event("modcontact", NICOLE)]
    assert stack.bridge_events.take() == events  # the bridge's outbound queue got the same


def test_get_chatroom_member_answers_on_the_queue(stack: Stack) -> None:
    reply = stack.call("getContact", a(userName=YANG, chatRoomName=ROOM, queueName="queue.reply.member"))
    assert reply["status"] == 0 and reply["contact"]["NickName"] == "杨过"
    assert stack.store.members(A["uin"], ROOM)[YANG]["ChatRoomName"] == ROOM
    [(_, outbox)] = stack.replies.wait(lambda got: len(got) >= 1)
    assert outbox["queueName"] == "queue.reply.member" and outbox["reply"] == reply
    assert stack.events.take() == []


def test_get_chatroom_stores_members(stack: Stack) -> None:
    reply = stack.call("getContact", a(userName=ROOM))
    assert reply["status"] == 0 and reply["contact"]["ChatRoomOwner"] == A["wxid"]
    assert YANG in stack.store.members(A["uin"], ROOM)
    assert stack.events.wait(lambda got: len(got) >= 1) == [event("chatroommember", ROOM)]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"userName": "wxid_stranger"}, 404, "not a contact"),
        ({"userName": YANG, "chatRoomName": ROOM}, 400, "queueName is required"),
        ({"userName": "wxid_nobody", "chatRoomName": ROOM, "queueName": "q"}, 404, "not in"),
        ({"chatRoomName": ROOM, "queueName": "q"}, 400, "userName"),
        ({"userName": NICOLE, "uin": None}, 400, "uin"),
    ],
)
def test_get_contact_failures(stack: Stack, fields: dict[str, Any], status: int, message: str) -> None:
    reply = stack.call("getContact", a(**fields), child=1)
    assert reply["status"] == status and message in reply["message"]


# -- addContact ---------------------------------------------------------------------------------------------------


def test_add_contact_sends_one_friend_request(stack: Stack) -> None:
    request = stack.add_contact_request("xiaolongnv") | {"verify": "你好", "type": "3", "queueName": "queue.reply.add"}
    reply = stack.call("addContact", request)
    assert reply == {**request, "status": 0, "message": ""}
    [xml] = stack.sim.pending_requests("wxid_a9s8d7f6g5h4j3")
    assert parse_friend_request(xml).content == "你好"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"type": -1}, 400, "type"),
        ({"type": "QR"}, 400, "type"),
        ({"v1": ""}, 400, "v1"),
        ({"verify": None}, 400, "verify"),
        ({"userName": "wxid_a9s8d7f6g5h4j3"}, 400, "wxid_"),
        ({"v2": "v2_forged@stranger"}, 502, "ticket"),
        ({"v1": "v1_unknown@stranger"}, 404, "unknown v1"),
    ],
)
def test_add_contact_failures(stack: Stack, fields: dict[str, Any], status: int, message: str) -> None:
    request = stack.add_contact_request("xiaolongnv") | fields
    reply = stack.call("addContact", request)
    assert reply["status"] == status and message in reply["message"]
    assert stack.sim.pending_requests("wxid_a9s8d7f6g5h4j3") == []


def test_add_contact_refused_by_the_other_side(stack: Stack) -> None:
    reply = stack.call("addContact", stack.add_contact_request("chanyu_fly"))
    assert reply["status"] == 403


@pytest.mark.parametrize("scene", [0, 6, 17, 30])
def test_add_contact_passes_on_any_scene_wechat_uses(stack: Stack, scene: int) -> None:
    request = stack.add_contact_request("xiaolongnv") | {"type": scene}
    assert stack.call("addContact", request) == {**request, "status": 0, "message": ""}
    assert stack.sim.verify_log() == [[A["uin"], 2, "wxid_a9s8d7f6g5h4j3", scene]]


# -- addNew -------------------------------------------------------------------------------------------------------


def test_add_new_accepts_the_pending_request(stack: Stack) -> None:
    [xml] = stack.sim.pending_requests(A["wxid"])  # the fixture's request from 合法人類。
    request = {"loginer": 18, "uin": A["uin"], **parse_friend_request(xml).add_new_fields(), "wechatUser": "{}"}
    reply = stack.call("addNew", request)
    assert reply["status"] == 0 and reply["field"] == "wxid_63ibkhndjl7i21"
    assert stack.contact(A, "wxid_63ibkhndjl7i21")["NickName"] == "合法人類。"  # type: ignore[index]
    assert stack.events.wait(lambda got: len(got) >= 1) == [event("modcontact", "wxid_63ibkhndjl7i21")]


def test_add_new_retried_after_the_accept_does_not_accept_again(stack: Stack) -> None:
    [xml] = stack.sim.pending_requests(A["wxid"])
    request = {"loginer": 18, "uin": A["uin"], **parse_friend_request(xml).add_new_fields()}
    stack.sim.set_faults(transient=1, after=1)  # the accept goes through; fetching the new friend times out once
    reply = stack.call("addNew", request)
    assert reply["status"] == 0 and reply["field"] == "wxid_63ibkhndjl7i21"
    assert [row[1] for row in stack.sim.verify_log()] == [3]  # accepted once
    assert stack.events.wait(lambda got: len(got) >= 1) == [event("modcontact", "wxid_63ibkhndjl7i21")]


def test_invalid_requests_are_dead_lettered(stack: Stack) -> None:
    result = stack.app.send_task(
        "contactq.syncContact", args=[{"uin": A["uin"]}, "extra"], queue="queue.syncContact_1_1"
    )
    assert result.get(timeout=20)["status"] == 400
    [(_, dead)] = stack.deadletters.wait(lambda got: len(got) >= 1)
    assert dead["task"] == "contactq.syncContact" and dead["request"] == {"args": [{"uin": A["uin"]}, "extra"]}
    assert Counters(stack.r).read()["dead_lettered"] == {("contactq.syncContact",): 1}  # counted with the answer


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"opcode": 2}, 400, "opcode must be 3"),
        ({"opcode": "3", "type": "30"}, 0, ""),  # numbers as strings are coerced
        ({"verifyUserTicket": "v2_wrong@stranger"}, 404, "no such friend request"),
        ({"type": -30}, 400, "type"),
    ],
)
def test_add_new_field_rules(stack: Stack, fields: dict[str, Any], status: int, message: str) -> None:
    [xml] = stack.sim.pending_requests(A["wxid"])
    request = {"loginer": "18", "uin": A["uin"], **parse_friend_request(xml).add_new_fields()} | fields
    reply = stack.call("addNew", request)
    assert reply["status"] == status and message in reply["message"]


# -- modifyName ---------------------------------------------------------------------------------------------------


def test_modify_name_sets_remark_and_pinyin(stack: Stack) -> None:
    reply = stack.call(
        "modifyName",
        {
            "loginer": 18,
            "uin": A["uin"],
            "userName": ZENG,
            "newRemarkName": "重庆老板",
            "wechatUser": '{"uin": 1150109773}',
        },
    )
    assert reply["status"] == 0
    stored = stack.contact(A, ZENG)
    assert stored is not None
    assert (stored["Remark"], stored["RemarkName"], stored["RemarkPYQuanPin"], stored["RemarkPYInitial"]) == (
        "重庆老板",
        "重庆老板",
        "chongqinglaoban",
        "CQLB",
    )
    # On topic.modcontact, and on topic.modifycontact, the name the seed's modifyName section uses.
    assert stack.events.wait(lambda got: len(got) >= 2) == [event("modcontact", ZENG), event("modifycontact", ZENG)]


def test_modify_name_of_a_stranger_is_not_found(stack: Stack) -> None:
    reply = stack.call("modifyName", {"loginer": 18, "uin": A["uin"], "userName": YANG, "newRemarkName": "x"})
    assert reply["status"] == 404
    assert stack.call("modifyName", {"loginer": 18, "uin": A["uin"], "userName": YANG})["status"] == 400


# -- addChatRoomContact ---------------------------------------------------------------------------------------------


def test_add_chatroom_contact_accepted_at_once(stack: Stack) -> None:
    request = {
        "loginer": 18,
        "uin": A["uin"],
        "userName": YANG,
        "chatRoomName": ROOM,
        "verify": "群里见过",
        "queueName": "queue.reply.room",
    }
    reply = stack.call("addChatRoomContact", request)
    assert reply == {**request, "status": 0, "message": ""}
    # Announced when sent (the seed's section) and again when 杨过 accepts, at once: WeChat pushes the new friend to A,
    # which is stored and announced. Each time on topic.modcontact and its alias topic.modifycontact.
    assert stack.events.wait(lambda got: len(got) >= 4) == [event("modcontact", YANG), event("modifycontact", YANG)] * 2
    assert stack.contact(A, YANG)["NickName"] == "杨过"  # type: ignore[index]
    assert stack.sim.verify_log() == [[A["uin"], 2, YANG, 14]]


def test_add_chatroom_contact_awaits_the_acceptance_before_sending(stack: Stack) -> None:
    """杨过 accepts at once, and another worker may handle WeChat's push before the task goes on: unless the acceptance
    is awaited before the request reaches WeChat, it is announced as a plain change (topic.modcontact alone)."""
    awaiting, sent = f"contactq:awaited:{A['uin']}:{YANG}", f"{stack.settings.sim_prefix}log:verify"
    seen: list[str] = []

    def watch(monitor: Monitor) -> None:
        # Redis's own order of the commands every process sends, up to the request reaching WeChat.
        for command in monitor.listen():
            words = str(command["command"]).split()
            if words[:2] == ["SADD", awaiting] or words[:2] == ["RPUSH", sent]:
                seen.append(words[0])
            if words[:2] == ["RPUSH", sent]:
                return

    with stack.r.monitor() as monitor:
        watcher = threading.Thread(target=watch, args=(monitor,), daemon=True)
        watcher.start()
        assert stack.call("addChatRoomContact", room_add())["status"] == 0
        watcher.join(timeout=10)
    assert seen == ["SADD", "RPUSH"]
    # 杨过's acceptance handled within this test: through Gewechat its callback comes late, and handled after the next
    # test's reset it would find no such friend, and announce the contact gone there.
    stack.events.wait(lambda got: len(got) >= 4)


def test_add_chatroom_contact_refused_is_not_awaited(stack: Stack) -> None:
    assert stack.call("addChatRoomContact", room_add(userName="wxid_u1i2o3p4a5s6d7"))["status"] == 404
    assert not stack.store.awaited(A["uin"], "wxid_u1i2o3p4a5s6d7")


def test_add_chatroom_contact_refused_leaves_an_earlier_request_awaited(stack: Stack) -> None:
    """小龙女 accepts by hand, later: a second request to her that WeChat refuses (she is not in that chatroom) must
    not make her acceptance of the first a plain change."""
    xiaolongnv = "wxid_a9s8d7f6g5h4j3"
    assert stack.call("addChatRoomContact", room_add(userName=xiaolongnv))["status"] == 0
    refused = room_add(userName=xiaolongnv, chatRoomName="20971512345@chatroom")
    assert stack.call("addChatRoomContact", refused)["status"] == 404
    assert stack.store.awaited(A["uin"], xiaolongnv)


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"userName": "wxid_u1i2o3p4a5s6d7"}, 404, "not in"),
        ({"chatRoomName": "not-a-room"}, 400, "chatRoomName"),
        ({"queueName": ""}, 400, "queueName"),
    ],
)
def test_add_chatroom_contact_failures(stack: Stack, fields: dict[str, Any], status: int, message: str) -> None:
    reply = stack.call("addChatRoomContact", room_add(**fields))
    assert reply["status"] == status and message in reply["message"]


# -- syncContact ----------------------------------------------------------------------------------------------------


def test_sync_contact_stores_everything_and_removes_what_is_gone(stack: Stack) -> None:
    stack.store.put_contacts(A["uin"], A["wxid"], [{"UserName": "wxid_long_gone"}], stack.store.read_clock())
    reply = stack.call("syncContact", {"loginer": 18, "uin": A["uin"]})
    assert (reply["status"], reply["contacts"], reply["chatrooms"], reply["removed"]) == (0, 16, 2, 1)
    stored = stack.store.usernames(A["uin"], A["wxid"])
    assert len(stored) == 18 and NICOLE in stored and ROOM in stored and "wxid_long_gone" not in stored
    assert stack.contact(A, NICOLE)["RemarkPYInitial"] == "SP"  # type: ignore[index]
    assert len(stack.store.members(A["uin"], ROOM)) == 7
    events = stack.events.wait(lambda got: len(got) >= 19)
    assert len([e for e in events if e[0] == "topic.getcontact"]) == 16
    assert sorted(e[1]["field"] for e in events if e[0] == "topic.chatroommember") == sorted(
        [ROOM, "20971512345@chatroom"]
    )
    assert [e for e in events if e[0] == "topic.delcontact"] == [event("delcontact", "wxid_long_gone")]
    assert event("getcontact", NICOLE) in events


# A read of WeChat that another task took after this test's own: µs of Redis's clock in the year 2112.
LATER = 2**52


def test_sync_keeps_and_does_not_announce_as_gone_a_contact_found_since_it_began(stack: Stack) -> None:
    """A contact the sync's lists lack, but that another task found after the sync began (a friend added anew)."""
    stack.store.put_contacts(A["uin"], A["wxid"], [{"UserName": "wxid_back_again"}], LATER)
    reply = stack.call("syncContact", {"loginer": 18, "uin": A["uin"]})
    assert (reply["status"], reply["removed"]) == (0, 0)
    assert "wxid_back_again" in stack.store.usernames(A["uin"], A["wxid"])
    events = stack.events.wait(lambda got: len(got) >= 18)
    assert [e for e in events if e[0] == "topic.delcontact"] == []


def test_a_deletion_pushed_before_the_contact_was_found_again_removes_nothing(stack: Stack) -> None:
    stack.store.put_contacts(A["uin"], A["wxid"], [{"UserName": NICOLE}], LATER)
    change = {"id": "1-1", "uin": A["uin"], "child_id": 1, "kind": "deleted", "username": NICOLE}
    assert stack.call("pushedChange", change, child=1)["change"] == ""
    assert stack.store.contact(A["uin"], A["wxid"], NICOLE) == {"UserName": NICOLE}
    assert stack.events.wait(lambda got: True, quiet_s=1) == []


def test_a_chatroom_left_between_its_details_and_its_members_is_removed_by_the_sync(stack: Stack) -> None:
    """WeChat still gives the chatroom's details, and no longer its members: the account left it in between. (A
    Gewechat server tells from the details already: the sync finds the chatroom gone from its list.) Announced gone
    once either way."""
    stack.store.put_contacts(A["uin"], A["wxid"], [{"UserName": ROOM}], stack.store.read_clock())  # synced before
    sim = redis.Redis.from_url(stack.settings.sim_url, decode_responses=True)
    key = f"{stack.settings.sim_prefix}chatroom:{ROOM}"
    room = json.loads(sim.get(key) or "{}")
    room["members"].remove(A["wxid"])
    sim.set(key, json.dumps(room))
    reply = stack.call("syncContact", {"loginer": 18, "uin": A["uin"]})
    assert (reply["status"], reply["contacts"], reply["chatrooms"]) == (0, 16, 1)
    assert ROOM not in stack.store.usernames(A["uin"], A["wxid"]) and stack.store.members(A["uin"], ROOM) == {}
    events = stack.events.wait(lambda got: len(got) >= 18)
    assert [e for e in events if e[1]["field"] == ROOM] == [event("delcontact", ROOM)]


@pytest.mark.skipif(not GEWE, reason="only a Gewechat server answers a contact list from its cache")
def test_sync_from_the_servers_cached_list_removes_nothing(stack: Stack) -> None:
    """The cache may lack a friend added since it was made, and still hold one removed since: neither is taken from
    it (played by 淑萍, a friend in the simulation, that this account's store holds as removed)."""
    stack.store.put_contacts(A["uin"], A["wxid"], [{"UserName": "wxid_added_lately"}], stack.store.read_clock())
    stack.store.remove(A["uin"], A["wxid"], [NICOLE], stack.store.read_clock())
    stack.sim.set_faults(transient=2)  # fetchContactsList times out, and again when tried once more
    reply = stack.call("syncContact", {"loginer": 18, "uin": A["uin"]})
    assert (reply["status"], reply["contacts"], reply["removed"]) == (0, 15, 0)
    stored = stack.store.usernames(A["uin"], A["wxid"])
    assert "wxid_added_lately" in stored and NICOLE not in stored


def test_sync_reports_progress(stack: Stack) -> None:
    stack.sim.set_faults(latency_ms=150)
    result = stack.submit("syncContact", {"loginer": 18, "uin": B["uin"]})
    progress = []
    while not result.ready():
        meta = result.backend.get_task_meta(result.id)  # state and its info read together
        if meta["status"] == "PROGRESS":
            progress.append(meta["result"]["stored"])
    assert progress and progress == sorted(progress) and progress[0] >= 1
    assert result.get(timeout=20)["contacts"] == 12
