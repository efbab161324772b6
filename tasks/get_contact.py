"""getContact: the detail of one contact (announced on topic.modcontact), of a chatroom, or of a chatroom member
(answered on queueName)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from contactq.errors import NotFound
from protocol.records import member_record
from tasks.messages import Request, Result
from tasks.operation import Call, operation


class GetContact(Request):
    userName: str = Field(min_length=1)
    chatRoomName: str | None = None

    @model_validator(mode="after")
    def _member_needs_reply_queue(self) -> GetContact:
        if self.chatRoomName and not self.queueName:
            raise ValueError("queueName is required to get a chatroom member")
        return self


class Detail(Result):
    contact: dict[str, Any] = Field(default_factory=dict)  # the stored record of the contact, chatroom or member


@operation("getContact", GetContact, Detail)
def get_contact(call: Call, req: GetContact) -> Detail:
    """Fetch and store the detail of a contact (announced on topic.modcontact), a chatroom (topic.chatroommember),
    or, with chatRoomName, of a chatroom member (answered on queueName)."""
    if req.chatRoomName:
        member = call.client.member_detail(req.uin, req.chatRoomName, req.userName)
        record = member_record(member, req.chatRoomName, call.session.wxid)
        call.store.put_member(req.uin, req.chatRoomName, record)
        return Detail(contact=record)
    records = call.refresh([req.userName])
    if not records:
        raise NotFound(f"{req.userName} is not a contact of {call.session.wxid}")
    if req.userName.endswith("@chatroom"):
        if not call.refresh_members(req.userName):  # left since its details were read: removed, and announced
            raise NotFound(f"{call.session.wxid} is no longer in {req.userName}")
        call.announce("chatroommember", [req.userName])
    else:
        call.announce("modcontact", [req.userName])
    return Detail(contact=records[0])
