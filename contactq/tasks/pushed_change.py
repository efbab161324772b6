"""pushedChange: a change WeChat pushed to an account, brought into the store and announced like the rest."""

from __future__ import annotations

from typing import Any

from contactq.errors import NotFound
from contactq.protocol.client import PushedChange
from contactq.tasks.operation import Call, operation
from contactq.tasks.queues import PUSHED_CHANGE


@operation(PUSHED_CHANGE, PushedChange)
def pushed_change(call: Call, change: PushedChange) -> dict[str, Any]:
    uin, wxid = call.session.uin, call.session.wxid
    if change.kind == "contact" and call.refresh([change.username]):
        call.announce("chatroommember" if change.username.endswith("@chatroom") else "modcontact", [change.username])
        return {"field": change.username, "change": "modified"}
    if change.kind == "chatroom":
        try:
            call.refresh([change.username])
            call.refresh_members(change.username)
        except NotFound:
            pass  # the account left the chatroom: gone, below
        else:
            call.announce("chatroommember", [change.username])
            return {"field": change.username, "change": "chatroom"}
    call.store.remove(uin, wxid, [change.username])
    call.announce("delcontact", [change.username])
    return {"field": change.username, "change": "deleted"}
