"""addNew: accept a received friend request (v1 encryptusername, v2 ticket); the new friend is stored and announced
on topic.modcontact."""

from __future__ import annotations

import logging

from pydantic import Field, field_validator

from protocol.client import Opcode
from tasks.messages import Request, Result, SceneCode
from tasks.operation import Call, operation

log = logging.getLogger(__name__)


class AddNew(Request):
    userName: str = Field(min_length=1)  # v1: the requester's encryptusername
    verifyUserTicket: str = Field(min_length=1)  # v2: the request's ticket
    opcode: int
    verifyContent: str = ""
    type: SceneCode
    wechatUser: str | None = None

    @field_validator("opcode")
    @classmethod
    def _accept_only(cls, value: int) -> int:
        if value != Opcode.ACCEPT:
            raise ValueError("opcode must be 3 (accept a friend request)")
        return value


class Accepted(Result):
    field: str = ""  # the new friend's wxid, as in the topic.modcontact event


@operation("addNew", AddNew, Accepted, once=lambda req: (req.userName, req.verifyUserTicket))
def add_new(call: Call, req: AddNew) -> Accepted:
    """Accept a received friend request (userName = v1, verifyUserTicket = v2, type = the XML's scene); the new
    friend is stored and announced on topic.modcontact."""
    # Accepted once: if storing the new friend fails and the task is retried, the used ticket is not offered again.
    friend = call.checkpoint(
        "accepted",
        lambda: call.client.verify_user(
            req.uin, Opcode.ACCEPT, req.userName, req.verifyUserTicket, req.verifyContent, req.type
        ),
    )
    # None when WeChat did not give the new friend's details, or a later read found the friend gone: nothing stored,
    # and nothing to announce.
    stored = call.refresh([friend])
    call.store.accepted_friend_request(
        req.uin, call.session.wxid, friend, req.verifyUserTicket, call.settings.dedupe_window_s
    )
    if stored:
        call.announce("modcontact", [friend])
    else:
        log.warning("addNew accepted %s, not stored: no details from WeChat, or found gone since", friend)
    return Accepted(field=friend)
