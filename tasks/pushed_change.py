"""pushedChange: a change WeChat pushed to an account, brought into the store and announced like the rest."""

from __future__ import annotations

from typing import Literal

from protocol.client import PushedChange
from protocol.friend_request import parse_friend_request
from tasks.messages import Result
from tasks.operation import Call, operation
from tasks.queues import PUSHED_CHANGE
from tasks.sync_contact import full_sync


class Handled(Result):
    field: str = ""
    change: Literal["", "modified", "accepted", "chatroom", "deleted", "login", "request", "accepted already"] = ""
    contacts: int = 0  # after a login: the contacts its sync stored


@operation(PUSHED_CHANGE, PushedChange, Handled)
def pushed_change(call: Call, change: PushedChange) -> Handled:
    """Bring a change WeChat pushed into the store and announce it: a contact changed or a new friend
    (topic.modcontact; and topic.modifycontact when a chatroom member accepted addChatRoomContact's request), a
    chatroom changed (topic.chatroommember), one gone (topic.delcontact), or the account came online (a full sync,
    topic.getcontact per contact). A received friend request is kept for the platform to accept (addNew)."""
    uin, wxid = call.session.uin, call.session.wxid
    if change.kind == "request":
        request = parse_friend_request(change.content)  # refused (and dead-lettered) unless the XML is safe
        if not call.store.put_friend_request(uin, wxid, request.fromusername, request.ticket, change.content):
            return Handled(field=request.fromusername, change="accepted already")
        return Handled(field=request.fromusername, change="request")
    if change.kind == "login":
        # The seed's login initialisation: the account's contacts, each announced on topic.getcontact.
        call.rt.registry.register([call.session])
        synced = full_sync(call)
        return Handled(field=wxid, change="login", contacts=synced.contacts + synced.chatrooms)
    # Before WeChat is asked: should the contact be found gone, a read that found it after this one still stands.
    read = call.store.read_clock()
    if change.kind == "contact" and call.refresh([change.username]):
        if change.username.endswith("@chatroom"):
            call.announce("chatroommember", [change.username])
        elif call.store.awaited(uin, change.username):
            # A chatroom member accepted addChatRoomContact's request: announced as that operation announces. Forgotten
            # only once announced, so that a retry after a failed announcement announces it the same way.
            call.announce_modified([change.username])
            call.store.forget_acceptance(uin, change.username)
            return Handled(field=change.username, change="accepted")
        else:
            call.announce("modcontact", [change.username])
        return Handled(field=change.username, change="modified")
    if change.kind == "chatroom" and call.refresh([change.username]):
        if not call.refresh_members(change.username):
            # The account left the chatroom since its details were read: removed and announced as of its members' read.
            return Handled(field=change.username, change="deleted")
        call.announce("chatroommember", [change.username])
        if call.settings.emit_modchatroommember:  # the seed's reserved topic, when a deployment wants it
            call.announce("modchatroommember", [change.username])
        return Handled(field=change.username, change="chatroom")
    if not call.store.remove(uin, wxid, [change.username], read):
        return Handled(field=change.username)  # found again since: a friend added anew, or a chatroom rejoined
    call.announce("delcontact", [change.username])
    return Handled(field=change.username, change="deleted")
