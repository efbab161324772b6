"""The contact store the Java side reads, and the registry of which child hosts which account.

`{uin}:wechatContact:{account wxid}`   HASH contact wxid (or `…@chatroom`) -> contact record JSON
`{uin}:chatroomMember:{chatroom id}`   HASH member wxid -> member record JSON
`contactq:account:{uin}`               HASH uin, wxid, server_id, child_id, loginer
`{uin}:wechatFriendRequest:{wxid}`     HASH sender wxid -> the received friend request's `<msg>` XML, until accepted
`contactq:awaited:{uin}:{wxid}`        SET the addChatRoomContact requests sent to a chatroom member, until they accept
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from contactq.errors import redis_errors
from protocol.client import Session

BATCH = 500


def contact_key(uin: str, account_wxid: str) -> str:
    return f"{uin}:wechatContact:{account_wxid}"


def members_key(uin: str, chatroom: str) -> str:
    return f"{uin}:chatroomMember:{chatroom}"


def requests_key(uin: str, account_wxid: str) -> str:
    return f"{uin}:wechatFriendRequest:{account_wxid}"


def awaiting_key(uin: str, username: str) -> str:
    return f"contactq:awaited:{uin}:{username}"


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class ContactStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def put_contacts(self, uin: str, account_wxid: str, records: Sequence[dict[str, Any]]) -> None:
        """Store records keyed by `UserName`, in pipelined batches."""
        key = contact_key(uin, account_wxid)
        with redis_errors("contact store"):
            pipe = self.r.pipeline(transaction=False)
            for start in range(0, len(records), BATCH):
                pipe.hset(key, mapping={r["UserName"]: _dumps(r) for r in records[start : start + BATCH]})
            pipe.execute()

    def contact(self, uin: str, account_wxid: str, username: str) -> dict[str, Any] | None:
        with redis_errors("contact store"):
            doc = self.r.hget(contact_key(uin, account_wxid), username)
        return json.loads(doc) if doc else None

    def usernames(self, uin: str, account_wxid: str) -> set[str]:
        with redis_errors("contact store"):
            return set(self.r.hkeys(contact_key(uin, account_wxid)))

    def remove(self, uin: str, account_wxid: str, usernames: Iterable[str]) -> None:
        names = list(usernames)
        if not names:
            return
        with redis_errors("contact store"):
            pipe = self.r.pipeline(transaction=False)
            pipe.hdel(contact_key(uin, account_wxid), *names)
            for name in names:
                if name.endswith("@chatroom"):
                    pipe.delete(members_key(uin, name))
            pipe.execute()

    def put_members(self, uin: str, chatroom: str, members: Sequence[dict[str, Any]]) -> None:
        """Replace the stored members of a chatroom, atomically."""
        key = members_key(uin, chatroom)
        with redis_errors("contact store"):
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(key)
            if members:
                pipe.hset(key, mapping={m["UserName"]: _dumps(m) for m in members})
            pipe.execute()

    def put_member(self, uin: str, chatroom: str, member: dict[str, Any]) -> None:
        with redis_errors("contact store"):
            self.r.hset(members_key(uin, chatroom), member["UserName"], _dumps(member))

    def await_acceptance(self, uin: str, username: str, request_id: str, ttl_s: int) -> None:
        """Remember a friend request sent to a chatroom member, to announce its acceptance as addChatRoomContact's.
        One entry per request: a request that was not sent after all leaves the others awaited."""
        key = awaiting_key(uin, username)
        with redis_errors("contact store"):
            self.r.pipeline().sadd(key, request_id).expire(key, ttl_s).execute()

    def not_sent(self, uin: str, username: str, request_id: str) -> None:
        with redis_errors("contact store"):
            self.r.srem(awaiting_key(uin, username), request_id)

    def awaited(self, uin: str, username: str) -> bool:
        with redis_errors("contact store"):
            return bool(self.r.exists(awaiting_key(uin, username)))

    def forget_acceptance(self, uin: str, username: str) -> None:
        """The member accepted: every request to them is answered."""
        with redis_errors("contact store"):
            self.r.delete(awaiting_key(uin, username))

    def put_friend_request(self, uin: str, account_wxid: str, sender: str, xml: str) -> None:
        """A friend request the account received, kept as WeChat delivered it for the platform to answer (addNew)."""
        with redis_errors("contact store"):
            self.r.hset(requests_key(uin, account_wxid), sender, xml)

    def friend_requests(self, uin: str, account_wxid: str) -> dict[str, str]:
        with redis_errors("contact store"):
            return dict(self.r.hgetall(requests_key(uin, account_wxid)))

    def drop_friend_request(self, uin: str, account_wxid: str, sender: str) -> None:
        with redis_errors("contact store"):
            self.r.hdel(requests_key(uin, account_wxid), sender)

    def members(self, uin: str, chatroom: str) -> dict[str, dict[str, Any]]:
        with redis_errors("contact store"):
            rows = self.r.hgetall(members_key(uin, chatroom))
        return {name: json.loads(doc) for name, doc in rows.items()}


class AccountRegistry:
    """Which server and child host an account; written by each worker for the accounts on its children."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def register(self, sessions: Iterable[Session]) -> None:
        with redis_errors("account registry"):
            pipe = self.r.pipeline(transaction=False)
            for s in sessions:
                pipe.hset(f"contactq:account:{s.uin}", mapping=s.model_dump())
            pipe.execute()

    def lookup(self, uin: str) -> Session | None:
        with redis_errors("account registry"):
            row = self.r.hgetall(f"contactq:account:{uin}")
        return Session.model_validate(row) if row else None
