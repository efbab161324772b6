"""searchContact: find a stranger by WeChat ID, QQ or phone; the reply carries v1 and v2 for a friend request."""

from __future__ import annotations

from tasks.messages import ReplyQueue, Request, Result, SearchableId
from tasks.operation import Call, operation


class SearchContact(Request):
    userName: SearchableId
    queueName: ReplyQueue


class Found(Result):
    """The seed's reply fields: `user_name` is v1 (encryptusername), `stranger` is v2 (the ticket)."""

    user_name: str = ""
    stranger: str = ""
    nick_name: str = ""
    small_head: str = ""
    quan_pin: str = ""


@operation("searchContact", SearchContact, Found)
def search_contact(call: Call, req: SearchContact) -> Found:
    """Search a WeChat user by WeChat ID, QQ or phone number; answer v1, v2, nickname, head image and pinyin."""
    found = call.client.search(req.uin, req.userName)
    return Found(
        user_name=found.v1,
        stranger=found.v2,
        nick_name=found.nickname,
        small_head=found.small_head,
        quan_pin=found.quan_pin,
    )
