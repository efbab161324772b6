"""searchContact: find a stranger by WeChat ID, QQ or phone; the reply carries v1 and v2 for a friend request."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contactq.tasks.messages import Request, SearchableId
from contactq.tasks.operation import Call, operation


class SearchContact(Request):
    userName: SearchableId
    queueName: str = Field(min_length=1)


@operation("searchContact", SearchContact)
def search_contact(call: Call, req: SearchContact) -> dict[str, Any]:
    found = call.client.search(req.uin, req.userName)
    return {
        "user_name": found.v1,
        "stranger": found.v2,
        "nick_name": found.nickname,
        "small_head": found.small_head,
        "quan_pin": found.quan_pin,
    }
