"""What a Gewechat server posts to its callback URL, and the pushed changes it means to an account.

A callback is `{"TypeName", "Appid", "Wxid", "Data"}`, its string values often wrapped as `{"string": ...}`:

| TypeName    | what it is                                   | pushed change                                       |
|-------------|----------------------------------------------|-----------------------------------------------------|
| AddMsg      | a message; MsgType 37 is a friend request    | `request` (sender, the `<msg>` XML); others ignored |
| ModContacts | a contact or chatroom added or changed       | `contact`, or `chatroom` for `…@chatroom`           |
| DelContacts | a contact or chatroom gone                   | `deleted`                                           |
| Offline     | the account went offline                     | none: the account is marked offline                 |
| Online      | the account logged in (posted by the login   | `login`: the seed's login sync                      |
|             | flow: Gewechat itself posts none)            |                                                     |

A server delivers a callback again after a restart or a failed post. A message is the same message by its Appid and
`NewMsgId` (Gewechat's rule); any other callback by its whole body, within a window.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contactq.errors import InvalidRequest
from protocol.client import PushedChange
from protocol.friend_request import parse_friend_request

FRIEND_REQUEST = 37
TYPES = ("AddMsg", "ModContacts", "DelContacts", "Offline", "Online")
TypeName = Literal["AddMsg", "ModContacts", "DelContacts", "Offline", "Online"]


class CallbackRefused(InvalidRequest):
    """A callback contactq cannot take; `reason` is its metrics label."""

    def __init__(self, reason: Literal["malformed", "unknown_type"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Callback(BaseModel):
    model_config = ConfigDict(extra="allow")

    TypeName: str = Field(min_length=1, max_length=64)
    Appid: str = Field(min_length=1, max_length=128)
    Wxid: str = ""
    Data: dict[str, Any] = {}


class Change(BaseModel):
    """What a callback means to the account: a pushed change without its stream id."""

    kind: Literal["contact", "deleted", "chatroom", "login", "request"]
    username: str = Field(min_length=1)
    content: str = ""


class Decoded(BaseModel):
    type_name: TypeName
    app_id: str
    wxid: str
    change: Change | None  # None: nothing for a task (a plain message, going offline)
    online: bool | None  # True: logged in, False: went offline, None: no news of it
    dedupe_id: str


def unwrap(value: Any) -> str:
    """A Gewechat string: plain, or wrapped as `{"string": ...}`; anything else is malformed."""
    if isinstance(value, dict) and set(value) == {"string"}:
        value = value["string"]
    if value is None:
        return ""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise CallbackRefused("malformed", f"expected a string, got {json.dumps(value)[:80]}")


def decode(body: bytes) -> Decoded | None:
    """A callback body, or None for the test message a server posts when its callback URL is set."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise CallbackRefused("malformed", f"not JSON: {e}") from e
    if isinstance(doc, dict) and "testMsg" in doc and "TypeName" not in doc:
        return None
    try:
        callback = Callback.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        raise CallbackRefused("malformed", f"not a callback: {first['loc']}: {first['msg']}") from e
    if callback.TypeName not in TYPES:
        raise CallbackRefused("unknown_type", f"unknown callback type {callback.TypeName!r}")
    type_name: TypeName = callback.TypeName  # type: ignore[assignment]
    data = callback.Data
    change: Change | None = None
    online: bool | None = None
    dedupe_id = "body:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    if type_name == "AddMsg":
        if data.get("NewMsgId") is not None:
            dedupe_id = f"msg:{callback.Appid}:{unwrap(data['NewMsgId'])}"
        if data.get("MsgType") == FRIEND_REQUEST:
            xml = unwrap(data.get("Content"))
            request = parse_friend_request(xml)  # refused unless it is the safe `<msg>` WeChat sends
            change = Change(kind="request", username=request.fromusername, content=xml)
    elif type_name in ("ModContacts", "DelContacts"):
        username = unwrap(data.get("UserName"))
        if not username:
            raise CallbackRefused("malformed", f"{type_name} without Data.UserName")
        kind = "deleted" if type_name == "DelContacts" else "chatroom" if username.endswith("@chatroom") else "contact"
        change = Change(kind=kind, username=username)
    elif type_name == "Online":
        online = True
        change = Change(kind="login", username=callback.Wxid) if callback.Wxid else None
    else:
        online = False
    return Decoded(
        type_name=type_name,
        app_id=callback.Appid,
        wxid=callback.Wxid,
        change=change,
        online=online,
        dedupe_id=dedupe_id,
    )


def callback_for(change: PushedChange, app_id: str, wxid: str, data: dict[str, Any]) -> dict[str, Any]:
    """The callback a Gewechat server posts for a change to account `wxid`; `data` adds what the server knows of it
    (a contact's details, a message's ids)."""
    wrapped = {"string": change.username}
    if change.kind == "request":
        body = {
            "FromUserName": {"string": "fmessage"},
            "ToUserName": {"string": wxid},
            "MsgType": FRIEND_REQUEST,
            "Content": {"string": change.content},
        }
        return {"TypeName": "AddMsg", "Appid": app_id, "Wxid": wxid, "Data": {**body, **data}}
    if change.kind == "login":
        return {"TypeName": "Online", "Appid": app_id, "Wxid": wxid, "Data": data}
    type_name = "DelContacts" if change.kind == "deleted" else "ModContacts"
    return {"TypeName": type_name, "Appid": app_id, "Wxid": wxid, "Data": {"UserName": wrapped, **data}}
