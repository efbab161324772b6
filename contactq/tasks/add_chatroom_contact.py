"""addChatRoomContact: send a friend request to a member of a chatroom (scene 14), once per request."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contactq.protocol.client import Opcode, Scene
from contactq.tasks.messages import Request
from contactq.tasks.operation import Call, operation


class AddChatRoomContact(Request):
    userName: str = Field(min_length=1)
    chatRoomName: str = Field(pattern=r".@chatroom$")
    verify: str
    queueName: str = Field(min_length=1)


@operation("addChatRoomContact", AddChatRoomContact, once=lambda req: (req.chatRoomName, req.userName))
def add_chatroom_contact(call: Call, req: AddChatRoomContact) -> dict[str, Any]:
    call.client.verify_user(req.uin, Opcode.ADD, req.userName, "", req.verify, Scene.CHATROOM, req.chatRoomName)
    return {}
