"""addContact: send a friend request to a stranger found by searchContact (v1, v2), once per request."""

from __future__ import annotations

from pydantic import Field

from protocol.client import Opcode
from tasks.messages import ReplyQueue, Request, Result, SceneCode, SearchableId
from tasks.operation import Call, operation


class AddContact(Request):
    userName: SearchableId
    v1: str = Field(min_length=1)
    v2: str = Field(min_length=1)
    verify: str
    type: SceneCode
    queueName: ReplyQueue


@operation("addContact", AddContact, Result, once=lambda req: (req.v1,))
def add_contact(call: Call, req: AddContact) -> Result:
    """Send a friend request (v1, v2 from searchContact, greeting `verify`, scene `type`); answered with the status."""
    call.client.verify_user(req.uin, Opcode.ADD, req.v1, req.v2, req.verify, req.type)
    return Result()
