"""The contact records the Java side reads from Redis, with the seed's field names."""

from __future__ import annotations

from typing import Any

from protocol.client import ChatroomMember, RawContact
from protocol.pinyin import initials, quan_pin

# The order of the seed's contact fields; every record carries all of them.
CONTACT_FIELDS = (
    "UserName",
    "NickName",
    "Remark",
    "RemarkName",
    "PYQuanPin",
    "PYInitial",
    "RemarkPYQuanPin",
    "RemarkPYInitial",
    "Alias",
    "Sex",
    "Province",
    "City",
    "Signature",
    "HeadImgUrl",
    "SmallHeadImgUrl",
    "BigHeadImgUrl",
    "ContactType",
    "ContactFlag",
    "VerifyFlag",
    "EncryptUsername",
    "LabelLists",
    "ChatroomVersion",
    "ChatRoomOwner",
    "ExtInfo",
    "ExtInfoExt",
    "MsgType",
    "Uin",
    "Seq",
    "wechatUserName",
)


def contact_record(raw: RawContact, account_wxid: str) -> dict[str, Any]:
    """The stored record of one contact of `account_wxid`; pinyin WeChat did not supply is computed."""
    record: dict[str, Any] = {
        **raw.model_dump(),
        "RemarkName": raw.Remark,
        "PYQuanPin": quan_pin(raw.NickName) if raw.PYQuanPin is None else raw.PYQuanPin,
        "PYInitial": initials(raw.NickName) if raw.PYInitial is None else raw.PYInitial,
        "RemarkPYQuanPin": quan_pin(raw.Remark) if raw.RemarkPYQuanPin is None else raw.RemarkPYQuanPin,
        "RemarkPYInitial": initials(raw.Remark) if raw.RemarkPYInitial is None else raw.RemarkPYInitial,
        "Seq": raw.Seq or raw.UserName,
        "wechatUserName": account_wxid,
    }
    return {name: record[name] for name in CONTACT_FIELDS}


def member_record(member: ChatroomMember, chatroom: str, account_wxid: str) -> dict[str, Any]:
    """The stored record of one chatroom member, as seen by `account_wxid`."""
    return {
        **member.model_dump(),
        "PYQuanPin": quan_pin(member.NickName),
        "PYInitial": initials(member.NickName),
        "ChatRoomName": chatroom,
        "wechatUserName": account_wxid,
    }
