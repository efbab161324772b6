"""The callbacks endpoint over real HTTP: what it appends for a task, what it refuses and counts, and that nothing it
refuses stops the callbacks after it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from contactq.callbacks import create_app
from contactq.errors import ConfigurationError
from contactq.settings import GeweAccount, Settings
from protocol.friend_request import FriendRequest, friend_request_xml
from protocol.gewe import OFFLINE_KEY, PUSH_PREFIX
from protocol.pushstream import stream_key
from tasks.metrics import KEY as METRICS_KEY
from tasks.metrics import Counters
from tests.servers import Served, free_port

SECRET = "s3cret"
ACCOUNT = GeweAccount(app_id="wx_app_a", uin="1150109773", wxid="wxid_a", server_id=1, child_id=2, loginer=18)
STREAM = stream_key(PUSH_PREFIX, 1, 2)


def _settings(**extra: Any) -> Settings:
    return Settings(gewe_accounts=[ACCOUNT], callbacks_secret=SECRET, callbacks_max_body_bytes=4096, **extra)


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/9", decode_responses=True)
    for key in [STREAM, OFFLINE_KEY, METRICS_KEY, *client.scan_iter(match="contactq:callback:*")]:
        client.delete(key)
    yield client
    client.close()


@pytest.fixture
def url(r: redis.Redis) -> Iterator[str]:
    with Served(create_app(_settings(), r)) as served:
        yield f"{served.url}/callbacks/{SECRET}"


def _post(url: str, doc: Any) -> httpx.Response:
    body = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False)
    return httpx.post(url, content=body, timeout=30)


def _entries(r: redis.Redis) -> list[dict[str, str]]:
    return [fields for _, fields in r.xrange(STREAM)]


def _counts(r: redis.Redis) -> dict[tuple[str, ...], int]:
    return Counters(r).read()["callbacks"]


def mod(username: str, at: int = 1) -> dict[str, Any]:
    return {
        "TypeName": "ModContacts",
        "Appid": ACCOUNT.app_id,
        "Wxid": ACCOUNT.wxid,
        "Data": {"UserName": {"string": username}, "CreateTime": at},
    }


def test_changes_are_appended_for_the_accounts_child_once(url: str, r: redis.Redis) -> None:
    assert _post(url, mod("wxid_friend")).json() == {"ret": 200, "msg": "accepted"}
    assert _post(url, mod("wxid_friend")).json() == {"ret": 200, "msg": "duplicate"}
    assert _post(url, mod("wxid_friend", at=2)).status_code == 200  # the same contact changed again: a new change
    deleted = {"TypeName": "DelContacts", "Appid": ACCOUNT.app_id, "Data": {"UserName": "room@chatroom"}}
    assert _post(url, deleted).status_code == 200
    xml = friend_request_xml(
        FriendRequest(fromusername="wxid_s", encryptusername="v1_s@stranger", ticket="v2_s@stranger", scene=3)
    )
    request = {
        "TypeName": "AddMsg",
        "Appid": ACCOUNT.app_id,
        "Wxid": ACCOUNT.wxid,
        "Data": {"MsgType": 37, "Content": {"string": xml}, "NewMsgId": 99, "FromUserName": {"string": "fmessage"}},
    }
    assert _post(url, request).json()["msg"] == "accepted"
    assert _post(url, {**request, "Data": {**request["Data"], "CreateTime": 5}}).json()["msg"] == "duplicate"
    assert _post(url, {"TypeName": "Online", "Appid": ACCOUNT.app_id, "Wxid": ACCOUNT.wxid}).status_code == 200
    assert [(e["uin"], e["kind"], e["username"]) for e in _entries(r)] == [
        (ACCOUNT.uin, "contact", "wxid_friend"),
        (ACCOUNT.uin, "contact", "wxid_friend"),
        (ACCOUNT.uin, "deleted", "room@chatroom"),
        (ACCOUNT.uin, "request", "wxid_s"),
        (ACCOUNT.uin, "login", "wxid_a"),
    ]
    assert _entries(r)[3]["content"] == xml
    counts = _counts(r)
    assert counts[("ModContacts", "accepted")] == 2 and counts[("ModContacts", "duplicate")] == 1
    assert counts[("AddMsg", "duplicate")] == 1


def test_offline_and_online_mark_the_account(url: str, r: redis.Redis) -> None:
    assert _post(url, {"TypeName": "Offline", "Appid": ACCOUNT.app_id, "Wxid": ACCOUNT.wxid}).json()["msg"] == "offline"
    assert r.sismember(OFFLINE_KEY, ACCOUNT.app_id)
    _post(url, {"TypeName": "Online", "Appid": ACCOUNT.app_id, "Wxid": ACCOUNT.wxid})
    assert not r.sismember(OFFLINE_KEY, ACCOUNT.app_id)
    chat = {"TypeName": "AddMsg", "Appid": ACCOUNT.app_id, "Data": {"MsgType": 1, "Content": "hi", "NewMsgId": 1}}
    assert _post(url, chat).json()["msg"] == "ignored"
    assert _post(url, {"testMsg": "回调地址链接成功！", "token": "x"}).json()["msg"] == "ignored"


def test_bad_callbacks_get_clear_errors_are_counted_and_stop_nothing(url: str, r: redis.Redis) -> None:
    base = url.rsplit("/", 1)[0]
    refused = [
        (httpx.post(f"{base}/wrong", content=json.dumps(mod("u"))), 401, "unauthorized"),
        (httpx.post(f"{base}/", content=b"{}"), 404, None),  # no secret at all: no such route
        (_post(url, b"x" * 5000), 413, "too_large"),
        (httpx.post(url, content=iter([b"{", b" " * 3000, b" " * 3000, b"}"])), 413, "too_large"),  # chunked
        (_post(url, b"{not json"), 400, "malformed"),
        (_post(url, b"\x00\xff"), 400, "malformed"),
        (_post(url, [1, 2]), 400, "malformed"),
        (
            _post(url, {"TypeName": "ModContacts", "Appid": ACCOUNT.app_id, "Data": {"UserName": {"x": 1}}}),
            400,
            "malformed",
        ),
        (
            _post(
                url,
                {
                    "TypeName": "AddMsg",
                    "Appid": ACCOUNT.app_id,
                    "Data": {"MsgType": 37, "Content": "<!DOCTYPE x><msg/>"},
                },
            ),
            400,
            "malformed",
        ),
        (_post(url, {"TypeName": "SnsUpdate", "Appid": ACCOUNT.app_id}), 422, "unknown_type"),
        (_post(url, {**mod("u"), "Appid": "wx_not_ours"}), 404, "unknown_account"),
    ]
    for response, status, outcome in refused:
        assert response.status_code == status, response.text
        if outcome:
            assert response.json()["msg"], response.text
    assert _entries(r) == []
    assert _post(url, mod("wxid_after")).json()["msg"] == "accepted"
    assert [e["username"] for e in _entries(r)] == ["wxid_after"]
    counts = _counts(r)
    assert counts[("unknown", "unauthorized")] == 1 and counts[("unknown", "too_large")] == 2
    assert counts[("unknown", "malformed")] == 4 and counts[("AddMsg", "malformed")] == 1
    assert counts[("unknown", "unknown_type")] == 1 and counts[("ModContacts", "unknown_account")] == 1


def test_redis_down_is_answered_503_so_the_server_posts_again() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, decode_responses=True)
    with Served(create_app(_settings(), dead)) as served:
        answer = _post(f"{served.url}/callbacks/{SECRET}", mod("u"))
    assert answer.status_code == 503 and "unavailable" in answer.json()["msg"]


def test_no_endpoint_without_a_secret() -> None:
    with pytest.raises(ConfigurationError, match="SECRET"):
        create_app(Settings(gewe_accounts=[ACCOUNT]), redis.Redis())
