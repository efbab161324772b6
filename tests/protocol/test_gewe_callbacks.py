"""Decoding what a Gewechat server posts: pure functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contactq.errors import InvalidRequest
from protocol.client import PushedChange
from protocol.friend_request import FriendRequest, friend_request_xml
from protocol.gewe_callbacks import CallbackRefused, callback_for, decode, unwrap

XML = friend_request_xml(
    FriendRequest(fromusername="wxid_from", encryptusername="v1_x@stranger", ticket="v2_y@stranger", scene=3)
)


def _body(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def test_strings_come_plain_or_wrapped() -> None:
    assert unwrap({"string": "a"}) == unwrap("a") == "a"
    assert unwrap(None) == "" and unwrap(7) == "7"
    for bad in ({"string": "a", "x": 1}, [1], True, {"string": {"deep": 1}}):
        with pytest.raises(CallbackRefused):
            unwrap(bad)


@pytest.mark.parametrize(
    ("kind", "type_name"),
    [("contact", "ModContacts"), ("chatroom", "ModContacts"), ("deleted", "DelContacts"), ("login", "Online")],
)
def test_what_the_served_simulation_posts_decodes_to_the_same_change(kind: str, type_name: str) -> None:
    username = "1@chatroom" if kind == "chatroom" else "wxid_acct" if kind == "login" else "wxid_friend"
    change = PushedChange(id="1-0", uin="1", child_id=1, kind=kind, username=username)  # type: ignore[arg-type]
    doc = callback_for(change, "app1", "wxid_acct", {"CreateTime": 1})
    decoded = decode(_body(doc))
    assert decoded is not None and decoded.type_name == type_name and decoded.app_id == "app1"
    assert decoded.change is not None and (decoded.change.kind, decoded.change.username) == (kind, username)


def test_a_friend_request_message_and_its_copy() -> None:
    change = PushedChange(id="1-0", uin="1", child_id=1, kind="request", username="wxid_from", content=XML)
    doc = callback_for(change, "app1", "wxid_acct", {"NewMsgId": 77, "CreateTime": 1})
    decoded = decode(_body(doc))
    assert decoded is not None and decoded.change is not None
    assert (decoded.change.kind, decoded.change.username, decoded.change.content) == ("request", "wxid_from", XML)
    assert decoded.dedupe_id == "msg:app1:77"
    changed_elsewhere = {**doc, "Data": {**doc["Data"], "CreateTime": 2}}
    assert decode(_body(changed_elsewhere)).dedupe_id == "msg:app1:77"  # type: ignore[union-attr]


def test_other_messages_mean_nothing_and_offline_marks_the_account() -> None:
    text = {"TypeName": "AddMsg", "Appid": "a", "Wxid": "w", "Data": {"MsgType": 1, "Content": {"string": "hi"}}}
    decoded = decode(_body(text))
    assert decoded is not None and decoded.change is None and decoded.online is None
    offline = decode(_body({"TypeName": "Offline", "Appid": "a", "Wxid": "w"}))
    assert offline is not None and offline.change is None and offline.online is False
    assert decode(_body({"testMsg": "回调地址链接成功！", "token": "t"})) is None


def test_bodies_tell_copies_apart() -> None:
    one = {"TypeName": "ModContacts", "Appid": "a", "Data": {"UserName": {"string": "u"}, "CreateTime": 1}}
    two = {**one, "Data": {**one["Data"], "CreateTime": 2}}
    first, again, other = decode(_body(one)), decode(json.dumps(one, indent=2).encode()), decode(_body(two))
    assert first and again and other
    assert first.dedupe_id == again.dedupe_id != other.dedupe_id


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"[]", "malformed"),
        (b"null", "malformed"),
        (_body({"TypeName": "ModContacts"}), "malformed"),  # no Appid
        (_body({"TypeName": "ModContacts", "Appid": "a", "Data": {}}), "malformed"),  # no UserName
        (_body({"TypeName": "ModContacts", "Appid": "a", "Data": {"UserName": {"string": [1]}}}), "malformed"),
        (_body({"TypeName": "ModContacts", "Appid": "a", "Data": "x"}), "malformed"),
        (_body({"TypeName": "ModContacts", "Appid": {"a": 1}, "Data": {}}), "malformed"),
        (_body({"TypeName": "FinderMsg", "Appid": "a"}), "unknown_type"),
    ],
)
def test_refused_callbacks_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(CallbackRefused) as refused:
        decode(body)
    assert refused.value.reason == reason and refused.value.message


def test_a_friend_request_with_unsafe_xml_is_refused() -> None:
    evil = '<!DOCTYPE msg [<!ENTITY x "y">]><msg fromusername="&x;" encryptusername="v1" ticket="v2" scene="3"/>'
    doc = {"TypeName": "AddMsg", "Appid": "a", "Data": {"MsgType": 37, "Content": {"string": evil}, "NewMsgId": 1}}
    with pytest.raises(InvalidRequest):
        decode(_body(doc))
