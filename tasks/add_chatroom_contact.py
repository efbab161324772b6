"""addChatRoomContact: send a friend request to a member of a chatroom (scene 14), once per request; announced on
topic.modcontact and topic.modifycontact when sent, and again when the member accepts (see pushed_change)."""

from __future__ import annotations

import logging

from pydantic import Field

from contactq.errors import OutcomeUnknown, StoreUnavailable, WeChatError
from protocol.client import Opcode, Scene
from tasks.messages import ReplyQueue, Request, Result
from tasks.operation import Call, operation

log = logging.getLogger(__name__)


class AddChatRoomContact(Request):
    userName: str = Field(min_length=1)
    chatRoomName: str = Field(pattern=r".@chatroom$")
    verify: str
    queueName: ReplyQueue


@operation("addChatRoomContact", AddChatRoomContact, Result, once=lambda req: (req.chatRoomName, req.userName))
def add_chatroom_contact(call: Call, req: AddChatRoomContact) -> Result:
    """Send a friend request to a member of a chatroom (scene 14) with greeting `verify`; answered on queueName and
    announced on topic.modcontact (and topic.modifycontact) with the member's wxid."""
    # Sent once: a retry after the announcement failed does not send the request again, nor await it again.
    call.checkpoint("sent", lambda: _send(call, req))
    call.announce_modified([req.userName])
    return Result()


def _send(call: Call, req: AddChatRoomContact) -> str:
    """The request, awaited before it goes out: a member who accepts at once is pushed back, and may be handled by
    another worker, before this task goes on."""
    request_id = str(call.task.request.id)
    call.store.await_acceptance(req.uin, req.userName, request_id, call.settings.awaiting_acceptance_s)
    try:
        return call.client.verify_user(
            req.uin, Opcode.ADD, req.userName, "", req.verify, Scene.CHATROOM, req.chatRoomName
        )
    except OutcomeUnknown:
        raise  # it may have reached WeChat: its acceptance may still come
    except WeChatError:
        # Not sent: nothing of this request to accept. Should Redis fail here, WeChat's answer still stands (a retry
        # would send again what WeChat refused, maybe as too frequent); the entry then runs out with the others.
        try:
            call.store.not_sent(req.uin, req.userName, request_id)
        except StoreUnavailable:
            log.warning("addChatRoomContact %s to %s stays awaited, though not sent", request_id, req.userName)
        raise
