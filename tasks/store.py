"""The contact store the Java side reads, and the registry of which child hosts which account.

`{uin}:wechatContact:{account wxid}`   HASH contact wxid (or `…@chatroom`) -> contact record JSON
`contactq:read:{uin}:{account wxid}`   HASH contact wxid -> the read of WeChat the stored record came from, or that
                                       found it gone (`{chatroom} members`: a member list's): an older read never
                                       overwrites it
`contactq:readclock`                   STRING the last read of WeChat handed out: orders reads across every worker
`{uin}:chatroomMember:{chatroom id}`   HASH member wxid -> member record JSON
`contactq:account:{uin}`               HASH uin, wxid, server_id, child_id, loginer
`{uin}:wechatFriendRequest:{wxid}`     HASH sender wxid -> the received friend request's `<msg>` XML, until accepted
`contactq:awaited:{uin}:{wxid}`        SET the addChatRoomContact requests sent to a chatroom member, until they accept
`contactq:accepted:{uin}:{digest}`     STRING a received friend request's ticket (v2) that addNew used: its push, come
                                       late or again, is not kept as waiting
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from contactq.errors import redis_errors
from protocol.client import Session

BATCH = 500

# Writes the records (ARGV[2..]: name, record, ...) of read ARGV[1], but not over a later read (a sync's page read
# before a remark was set, and written after it). Returns the names that a later read found gone: not written.
# KEYS: the contacts, their reads.
_PUT = """
local names = {}
for i = 2, #ARGV, 2 do names[#names + 1] = ARGV[i] end
local read = redis.call('HMGET', KEYS[2], unpack(names))
local at = tonumber(ARGV[1])
local records, stamps, gone = {}, {}, {}
for j, name in ipairs(names) do
  if not (read[j] and tonumber(read[j]) > at) then
    records[#records + 1] = name
    records[#records + 1] = ARGV[2 * j + 1]
    stamps[#stamps + 1] = name
    stamps[#stamps + 1] = ARGV[1]
  elseif redis.call('HEXISTS', KEYS[1], name) == 0 then
    gone[#gone + 1] = name
  end
end
if #records > 0 then
  redis.call('HSET', KEYS[1], unpack(records))
  redis.call('HSET', KEYS[2], unpack(stamps))
end
return gone
"""

# Removes the contacts ARGV[2..] found gone by read ARGV[1], but not one a later read found (a friend added again
# meanwhile); the read stays as the removal's, so that an earlier one does not bring the contact back. A chatroom's
# members go with it. Returns the names removed. KEYS: the contacts, their reads, then each name's members key.
_REMOVE = """
local at = tonumber(ARGV[1])
local read = redis.call('HMGET', KEYS[2], unpack(ARGV, 2))
local removed = {}
for j = 2, #ARGV do
  if not (read[j - 1] and tonumber(read[j - 1]) > at) then
    redis.call('HDEL', KEYS[1], ARGV[j])
    redis.call('HSET', KEYS[2], ARGV[j], ARGV[1])
    if string.sub(ARGV[j], -9) == '@chatroom' then
      redis.call('DEL', KEYS[j + 1])
      redis.call('HDEL', KEYS[2], ARGV[j] .. ' members')
    end
    removed[#removed + 1] = ARGV[j]
  end
end
return removed
"""

# Replaces a chatroom's members (ARGV[3..]: name, record, ...) with those of read ARGV[1], unless a later read of its
# members came first (0), or the chatroom (ARGV[2]) is not stored, found gone since (-1). KEYS: the members, the
# reads, the contacts.
_PUT_MEMBERS = """
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then return -1 end
local list = redis.call('HGET', KEYS[2], ARGV[2] .. ' members')
if list and tonumber(list) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
redis.call('HSET', KEYS[2], ARGV[2] .. ' members', ARGV[1])
return 1
"""


# The next read of WeChat: Redis's clock in µs, or one past the last read handed out should the clock be behind it (a
# clock stepped back). Never behind what a Redis restart lost of the counter either: the clock ran on meanwhile.
_READ_CLOCK = """
local now = redis.call('TIME')
local at = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if at <= last then at = last + 1 end
redis.call('SET', KEYS[1], string.format('%.0f', at))
return at
"""

# Keeps a received friend request (KEYS[1] field ARGV[1], the XML ARGV[2]) unless addNew used its ticket (KEYS[2]).
_PUT_FRIEND_REQUEST = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def contact_key(uin: str, account_wxid: str) -> str:
    return f"{uin}:wechatContact:{account_wxid}"


def members_key(uin: str, chatroom: str) -> str:
    return f"{uin}:chatroomMember:{chatroom}"


def requests_key(uin: str, account_wxid: str) -> str:
    return f"{uin}:wechatFriendRequest:{account_wxid}"


def reads_key(uin: str, account_wxid: str) -> str:
    return f"contactq:read:{uin}:{account_wxid}"


READ_CLOCK = "contactq:readclock"


def accepted_key(uin: str, ticket: str) -> str:
    # surrogatepass: a ticket is a request's string, which may hold lone surrogates (valid JSON).
    return f"contactq:accepted:{uin}:{hashlib.sha256(ticket.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def awaiting_key(uin: str, username: str) -> str:
    return f"contactq:awaited:{uin}:{username}"


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _fields(records: Iterable[dict[str, Any]]) -> list[str]:
    """A script's `name, record, ...` arguments."""
    return [x for r in records for x in (r["UserName"], _dumps(r))]


class ContactStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._put = client.register_script(_PUT)
        self._remove = client.register_script(_REMOVE)
        self._read_clock = client.register_script(_READ_CLOCK)
        self._put_members = client.register_script(_PUT_MEMBERS)
        self._put_friend_request = client.register_script(_PUT_FRIEND_REQUEST)

    def read_clock(self) -> int:
        """The next read of WeChat, in an order every worker shares (µs of Redis's clock, kept from stepping back):
        taken before the read, and given with what it read."""
        with redis_errors("contact store"):
            return int(self._read_clock(keys=[READ_CLOCK]))

    def put_contacts(self, uin: str, account_wxid: str, records: Sequence[dict[str, Any]], read: int) -> set[str]:
        """Store records keyed by `UserName`, from `read` (`read_clock()`), in batches, each over an earlier read
        only; returns the names a later read found gone, not stored."""
        keys = [contact_key(uin, account_wxid), reads_key(uin, account_wxid)]
        gone: set[str] = set()
        with redis_errors("contact store"):
            for start in range(0, len(records), BATCH):
                gone.update(self._put(keys=keys, args=[read, *_fields(records[start : start + BATCH])]))
        return gone

    def contact(self, uin: str, account_wxid: str, username: str) -> dict[str, Any] | None:
        with redis_errors("contact store"):
            doc = self.r.hget(contact_key(uin, account_wxid), username)
        return json.loads(doc) if doc else None

    def usernames(self, uin: str, account_wxid: str) -> set[str]:
        with redis_errors("contact store"):
            return set(self.r.hkeys(contact_key(uin, account_wxid)))

    def remove(self, uin: str, account_wxid: str, usernames: Iterable[str], read: int) -> list[str]:
        """Remove contacts that `read` (`read_clock()`) found gone, in batches, unless a later read found them;
        returns those removed."""
        names = list(usernames)
        keys = [contact_key(uin, account_wxid), reads_key(uin, account_wxid)]
        removed: list[str] = []
        with redis_errors("contact store"):
            for start in range(0, len(names), BATCH):
                batch = names[start : start + BATCH]
                removed += self._remove(keys=keys + [members_key(uin, n) for n in batch], args=[read, *batch])
        return removed

    def removed(self, uin: str, account_wxid: str, usernames: Sequence[str]) -> set[str]:
        """Of these, the contacts known gone: removed, and not found again since."""
        if not usernames:
            return set()
        with redis_errors("contact store"):
            pipe = self.r.pipeline(transaction=False)
            pipe.hmget(reads_key(uin, account_wxid), usernames)
            pipe.hmget(contact_key(uin, account_wxid), usernames)
            reads, records = pipe.execute()
        return {name for name, read, doc in zip(usernames, reads, records, strict=True) if read and doc is None}

    def put_members(
        self, uin: str, account_wxid: str, chatroom: str, members: Sequence[dict[str, Any]], read: int
    ) -> bool:
        """Replace the stored members of a stored chatroom with those of `read`, atomically, over an earlier read
        only; False when the chatroom is not stored (found gone since)."""
        keys = [members_key(uin, chatroom), reads_key(uin, account_wxid), contact_key(uin, account_wxid)]
        with redis_errors("contact store"):
            return int(self._put_members(keys=keys, args=[read, chatroom, *_fields(members)])) >= 0

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

    def put_friend_request(self, uin: str, account_wxid: str, sender: str, ticket: str, xml: str) -> bool:
        """A friend request the account received, kept as WeChat delivered it for the platform to answer (addNew);
        False when addNew already used its ticket (its push came late, or again)."""
        keys = [requests_key(uin, account_wxid), accepted_key(uin, ticket)]
        with redis_errors("contact store"):
            return bool(self._put_friend_request(keys=keys, args=[sender, xml]))

    def friend_requests(self, uin: str, account_wxid: str) -> dict[str, str]:
        with redis_errors("contact store"):
            return dict(self.r.hgetall(requests_key(uin, account_wxid)))

    def accepted_friend_request(self, uin: str, account_wxid: str, sender: str, ticket: str, window_s: int) -> None:
        """addNew used the ticket: the request no longer waits, and its push, should it come after, is not kept."""
        with redis_errors("contact store"):
            pipe = self.r.pipeline()
            pipe.set(accepted_key(uin, ticket), 1, ex=window_s)
            pipe.hdel(requests_key(uin, account_wxid), sender)
            pipe.execute()

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
