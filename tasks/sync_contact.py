"""syncContact: the account's whole contact list, page by page, stored in batches and announced
(topic.getcontact per contact, topic.chatroommember per chatroom); what is gone is removed and announced on
topic.delcontact. Progress shows as the task state PROGRESS. An account coming online is synced the same way
(pushed_change)."""

from __future__ import annotations

import logging

from tasks.messages import Request, Result
from tasks.operation import Call, operation

log = logging.getLogger(__name__)


class SyncContact(Request):
    pass


class Synced(Result):
    contacts: int = 0
    chatrooms: int = 0
    removed: int = 0


@operation("syncContact", SyncContact, Synced)
def sync_contact(call: Call, req: SyncContact) -> Synced:
    """Store the account's whole contact list (friends and chatrooms with their members), announce each on
    topic.getcontact or topic.chatroommember, and remove what is gone (topic.delcontact)."""
    return full_sync(call)


def full_sync(call: Call) -> Synced:
    uin, wxid = call.session.uin, call.session.wxid
    started = call.store.read_clock()  # a contact absent from the lists read since then was gone by then
    before = call.store.usernames(uin, wxid)
    seen: set[str] = set()
    contacts = chatrooms = pages = 0
    seq = 0
    complete = True
    while True:
        page = call.client.contact_list(uin, seq)
        complete = complete and page.complete
        names = page.usernames
        if not page.complete:
            # The server's cache may still list contacts removed since it was made: they are not brought back.
            known_gone = call.store.removed(uin, wxid, names)
            names = [name for name in names if name not in known_gone]
        pages += 1
        for start in range(0, len(names), call.settings.sync_detail_batch):
            records = call.refresh(names[start : start + call.settings.sync_detail_batch])
            # A chatroom the account left since its details were read is removed, not synced.
            rooms = [r["UserName"] for r in records if r["UserName"].endswith("@chatroom")]
            rooms = [room for room in rooms if call.refresh_members(room)]
            friends = [r["UserName"] for r in records if not r["UserName"].endswith("@chatroom")]
            call.rt.outbox.publish_events(
                [call.announcement("getcontact", f) for f in friends]
                + [call.announcement("chatroommember", room) for room in rooms]
            )
            seen.update(friends, rooms)
            contacts += len(friends)
            chatrooms += len(rooms)
            # `expected`: what the account had at its last sync, all a progress bar can know before the last page.
            call.progress(stored=len(seen), pages=pages, expected=len(before))
        if not page.more:
            break
        seq = page.next_seq
    # A list from the server's cache may lack friends added since it was made: nothing is removed for its sake.
    gone = sorted(before - seen) if complete else []
    if not complete:
        log.warning("sync of %s: the contact list came from the server's cache; nothing removed", uin)
    removed = call.store.remove(uin, wxid, gone, started)  # not one found again since
    call.announce("delcontact", removed)
    return Synced(contacts=contacts, chatrooms=chatrooms, removed=len(removed))
