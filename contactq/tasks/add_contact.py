"""addContact: send a friend request to a stranger found by searchContact (v1, v2), once per request."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contactq.protocol.client import Opcode, Scene
from contactq.tasks.messages import Request, SearchableId
from contactq.tasks.operation import Call, operation


class AddContact(Request):
    userName: SearchableId
    v1: str = Field(min_length=1)
    v2: str = Field(min_length=1)
    verify: str
    type: Scene
    queueName: str = Field(min_length=1)


@operation("addContact", AddContact, once=lambda req: (req.v1,))
def add_contact(call: Call, req: AddContact) -> dict[str, Any]:
    call.client.verify_user(req.uin, Opcode.ADD, req.v1, req.v2, req.verify, req.type)
    return {}
