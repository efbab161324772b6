"""The simulated WeChat: a small WeChat network kept in Redis, shared by every worker process.

An account on child 1 can search and add an account on child 2, who then holds the request and accepts it. Tests and
the demo steer it from Python (`rename`, `delete_account`, `add_member`, `set_faults`, ...); the changes it would push
to an account land on a Redis stream per protocol-server child, read with `receive_changes`.

Keys, all under the configured prefix (default `simwx:`): `person:{wxid}` (JSON), `account:{uin}` (hash),
`uin:{wxid}`, `app:{appId}` (uin), `find:{alias|phone|qq}`, `contacts:{wxid}` (zset: contact -> sequence),
`remarks:{wxid}` (hash), `chatroom:{id}` (JSON), `v1:{v1}` and `ticket:{v2}`, `pending:{wxid}` (hash: sender ->
request), `log:verify` (every friend request sent or accepted), `faults` (hash), `push:{server}:{child}` (stream, see
protocol.pushstream).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import redis

from contactq.errors import NotOnline, redis_errors
from contactq.settings import GeweAccount, Settings
from protocol.client import (
    ChatroomMember,
    ContactPage,
    Opcode,
    PushedChange,
    RawContact,
    SearchResult,
    Session,
    error_for_code,
)
from protocol.fixture import Account, Chatroom, Fixture, Person, load_fixture
from protocol.friend_request import FriendRequest, friend_request_xml
from protocol.pinyin import initials, quan_pin
from protocol.pushstream import MAXLEN, PushStreams, entry, stream_key

_LOAD_BATCH = 1000

# A call's way in: the account's row, and (when the account is online on one of this server's children) one fault
# token, if any is set, with the latency to add. KEYS[1] the account, KEYS[2] the faults; ARGV[1] this server, ARGV[2]
# its children, comma-separated. A call that goes on (`go`) may do its own work in the same script.
_ENTER_FUNCTION = """
local function enter()
  local row = redis.call('HGETALL', KEYS[1])
  local account = {}
  for i = 1, #row, 2 do account[row[i]] = row[i + 1] end
  local here = account['online'] == '1' and account['server_id'] == ARGV[1]
  local child = account['child_id']
  local hosted = child ~= nil and string.find(',' .. ARGV[2] .. ',', ',' .. child .. ',', 1, true)
  if not (here and hosted) then
    return row, 0, '', false, account
  end
  local f = redis.call('HMGET', KEYS[2], 'latency_ms', 'transient', 'too_frequent', 'after')
  local latency = tonumber(f[1] or '0') or 0
  if (tonumber(f[4] or '0') or 0) > 0 then
    redis.call('HINCRBY', KEYS[2], 'after', -1)
    return row, latency, '', true, account
  end
  for i, name in ipairs({'transient', 'too_frequent'}) do
    local n = tonumber(f[i + 1] or '0') or 0
    if n > 0 then
      redis.call('HINCRBY', KEYS[2], name, -1)
      return row, latency, name, false, account
    end
  end
  return row, latency, '', true, account
end
"""

_ENTER = (
    _ENTER_FUNCTION
    + """
local row, latency, fault = enter()
return {row, latency, fault}
"""
)

# A search, entry included, in one round trip (a real protocol server's one call): who the query (KEYS[3]) finds,
# their profile, and a v2 ticket (KEYS[4]) issued to the searcher for them (tickets of someone gone lead nowhere: see
# _stranger). ARGV[3] is the people's key prefix.
_SEARCH = (
    _ENTER_FUNCTION
    + """
local row, latency, fault, go, account = enter()
if not go then return {row, latency, fault} end
local wxid = redis.call('GET', KEYS[3])
if not wxid then return {row, latency, fault} end
local doc = redis.call('GET', ARGV[3] .. wxid)
if not doc then return {row, latency, fault} end
redis.call('SET', KEYS[4], cjson.encode({account['wxid'], wxid}))
return {row, latency, fault, wxid, doc}
"""
)


def _redis_errors() -> AbstractContextManager[None]:
    return redis_errors("simulated WeChat state")


class _Account(Session):
    online: bool

    def session(self) -> Session:
        return Session.model_validate(self.model_dump(exclude={"online"}))


def _head_url(wxid: str, size: int) -> str:
    return f"http://wx.qlogo.cn/mmhead/ver_1/{hashlib.sha1(wxid.encode()).hexdigest()}/{size}"


class SimulatedWeChat:
    def __init__(
        self,
        client: redis.Redis,
        server_id: int,
        child_ids: Sequence[int],
        prefix: str = "simwx:",
        page_size: int = 500,
        timeout_s: float = 10.0,
    ) -> None:
        self.r = client
        self.server_id = server_id
        self.child_ids = list(child_ids)
        self.p = prefix
        self.page_size = page_size
        self.timeout_s = timeout_s
        self.lock_key = f"{prefix}loading"
        self.pushes = PushStreams(client, prefix, server_id)
        self._enter_args = [server_id, ",".join(str(c) for c in self.child_ids)]
        self._enter_script = client.register_script(_ENTER)
        self._search_script = client.register_script(_SEARCH)

    # -- the WeChatClient interface -----------------------------------------------------------------------------

    def sessions(self, child_id: int) -> list[Session]:
        with _redis_errors():
            uins = sorted(self.r.smembers(f"{self.p}accounts"))
            found = [self._account(uin) for uin in uins]
        return [
            a.session() for a in found if a is not None and a.server_id == self.server_id and a.child_id == child_id
        ]

    def session(self, uin: str) -> Session:
        with _redis_errors():
            found = self._account(uin)
        return self._hosted(uin, found)

    def _hosted(self, uin: str, found: _Account | None) -> Session:
        """The session of an account this client serves and that is online, or NotOnline."""
        if found is None:
            raise NotOnline(f"uin {uin} is not logged in on server {self.server_id}")
        if found.server_id != self.server_id or found.child_id not in self.child_ids:
            raise NotOnline(
                f"uin {uin} is logged in on server {found.server_id} child {found.child_id}, "
                f"not on server {self.server_id} children {self.child_ids}"
            )
        if not found.online:
            raise error_for_code(-13, f"uin {uin} is offline")
        return found.session()

    def search(self, uin: str, query: str) -> SearchResult:
        v2 = f"v2_{secrets.token_hex(32)}@stranger"
        with _redis_errors():
            row, latency_ms, fault, *found = self._search_script(
                keys=[*self._enter_keys(uin), f"{self.p}find:{query.lower()}", f"{self.p}ticket:{v2}"],
                args=[*self._enter_args, f"{self.p}person:"],
            )
        self._entered(uin, row, latency_ms, fault)
        if not found:
            raise error_for_code(-4, f"no WeChat user {query!r}")
        wxid, doc = found
        person = json.loads(doc)
        return SearchResult(
            v1=self._v1(wxid),
            v2=v2,
            nickname=person["nickname"],
            small_head=person["small_head"],
            quan_pin=person["quan_pin"],
        )

    def verify_user(
        self, uin: str, opcode: Opcode, v1: str, v2: str, content: str, scene: int, chatroom: str = ""
    ) -> str:
        me = self._enter(uin)
        with _redis_errors():
            if opcode == Opcode.ACCEPT:
                return self._accept(me, v1, v2)
            target = self._member_of(me.wxid, chatroom, v1) if chatroom else self._stranger(me.wxid, v1, v2)
            self.r.rpush(f"{self.p}log:verify", json.dumps([uin, int(opcode), target, int(scene)]))
            if self.r.zscore(f"{self.p}contacts:{me.wxid}", target) is not None:
                return target
            person = self._person(target)
            if person["accept"] == "never":
                raise error_for_code(-24, f"{target} does not accept friend requests")
            if person["accept"] == "auto":
                self._befriend(me.wxid, target)
                self._push(me.wxid, "contact", target)
                self._push(target, "contact", me.wxid)
            else:
                self._request(me.wxid, target, content, scene, chatroom)
            return target

    def contact_details(self, uin: str, usernames: Sequence[str]) -> list[RawContact]:
        me = self._enter(uin)
        if not usernames:
            return []
        with _redis_errors():
            pipe = self.r.pipeline(transaction=False)
            pipe.zmscore(f"{self.p}contacts:{me.wxid}", list(usernames))
            pipe.hmget(f"{self.p}remarks:{me.wxid}", list(usernames))
            pipe.mget([self._key_of(name) for name in usernames])
            scores, remarks, docs = pipe.execute()
        found = []
        for name, score, remark, doc in zip(usernames, scores, remarks, docs, strict=True):
            if score is None or doc is None:
                continue
            found.append(self._raw(name, json.loads(doc), remark or ""))
        return found

    def contact_list(self, uin: str, seq: int) -> ContactPage:
        me = self._enter(uin)
        with _redis_errors():
            rows = self.r.zrangebyscore(
                f"{self.p}contacts:{me.wxid}",
                f"({seq}",
                "+inf",
                start=0,
                num=self.page_size + 1,
                withscores=True,
            )
        page = rows[: self.page_size]
        next_seq = int(page[-1][1]) if page else seq
        return ContactPage(usernames=[name for name, _ in page], next_seq=next_seq, more=len(rows) > len(page))

    def member_detail(self, uin: str, chatroom: str, username: str) -> ChatroomMember:
        me = self._enter(uin)
        with _redis_errors():
            self._member_of(me.wxid, chatroom, username)
            return self._member(username, self._person(username), self._room(chatroom))

    def set_remark(self, uin: str, username: str, remark: str) -> None:
        me = self._enter(uin)
        with _redis_errors():
            if self.r.zscore(f"{self.p}contacts:{me.wxid}", username) is None:
                raise error_for_code(-4, f"{username} is not a contact of {me.wxid}")
            self.r.hset(f"{self.p}remarks:{me.wxid}", username, remark)

    def chatroom_members(self, uin: str, chatroom: str) -> list[ChatroomMember]:
        me = self._enter(uin)
        with _redis_errors():
            room = self._room(chatroom)
            if me.wxid not in room["members"]:
                raise error_for_code(-4, f"{me.wxid} is not in {chatroom}")
            docs = self.r.mget([f"{self.p}person:{m}" for m in room["members"]])
        return [self._member(m, json.loads(d), room) for m, d in zip(room["members"], docs, strict=True) if d]

    def receive_changes(self, child_id: int, consumer: str, block_ms: int) -> list[PushedChange]:
        return self.pushes.receive(child_id, consumer, block_ms)

    def ack_changes(self, child_id: int, ids: Sequence[str]) -> None:
        self.pushes.ack(child_id, ids)

    # -- steering the simulation: fixtures, faults and the changes WeChat pushes ----------------------------------

    def load(self, fixture: Fixture) -> None:
        """Replace the whole simulated network with `fixture`."""
        with _redis_errors():
            self.reset()
            people: list[Person] = [*fixture.people, *fixture.accounts]
            for start in range(0, len(people), _LOAD_BATCH):
                pipe = self.r.pipeline(transaction=False)
                for person in people[start : start + _LOAD_BATCH]:
                    self._put_person(pipe, person)
                pipe.execute()
            pipe = self.r.pipeline(transaction=False)
            for account in fixture.accounts:
                self._put_account(pipe, account)
            pipe.execute()
            for start in range(0, len(fixture.friendships), _LOAD_BATCH):
                pipe = self.r.pipeline(transaction=False)
                for seq, f in enumerate(fixture.friendships[start : start + _LOAD_BATCH], start=start + 1):
                    self._befriend(f.account, f.friend, seq, pipe)
                    if f.remark:
                        pipe.hset(f"{self.p}remarks:{f.account}", f.friend, f.remark)
                pipe.execute()
            self.r.set(f"{self.p}seq", len(fixture.friendships))
            for room in fixture.chatrooms:
                self._put_room(room)
            for req in fixture.pending_requests:
                self._request(req.sender, req.to, req.content, req.scene, "", push=False)

    def load_file(self, path: Path | None) -> None:
        self.load(load_fixture(path))

    def reset(self) -> None:
        with _redis_errors():
            keys = [k for k in self.r.scan_iter(match=f"{self.p}*", count=1000) if k != self.lock_key]
            for start in range(0, len(keys), _LOAD_BATCH):
                self.r.delete(*keys[start : start + _LOAD_BATCH])

    def set_faults(self, latency_ms: int = 0, transient: int = 0, too_frequent: int = 0, after: int = 0) -> None:
        """Add latency to every WeChat call, and fail `transient` / `too_frequent` calls once `after` calls passed."""
        self.r.hset(
            f"{self.p}faults",
            mapping={"latency_ms": latency_ms, "transient": transient, "too_frequent": too_frequent, "after": after},
        )

    def set_online(self, uin: str, online: bool) -> None:
        """Log the account in or out; coming online pushes `login` to its child, as a protocol server does."""
        was = self.r.hget(f"{self.p}account:{uin}", "online")
        self.r.hset(f"{self.p}account:{uin}", "online", "1" if online else "0")
        wxid = self.r.hget(f"{self.p}account:{uin}", "wxid")
        if online and was != "1" and wxid:
            self._push(wxid, "login", wxid)

    def rename(self, wxid: str, nickname: str) -> None:
        """`wxid` changes its nickname: every account that has them as a contact is told."""
        person = self._person(wxid)
        person.update(nickname=nickname, quan_pin=quan_pin(nickname), initials=initials(nickname))
        self.r.set(f"{self.p}person:{wxid}", json.dumps(person))
        for account in self._accounts_with(wxid):
            self._push(account, "contact", wxid)

    def delete_account(self, wxid: str) -> None:
        """`wxid` deletes their WeChat account: they vanish from every contact list and chatroom."""
        for account in self._accounts_with(wxid):
            self.r.zrem(f"{self.p}contacts:{account}", wxid)
            self._push(account, "deleted", wxid)
        for key in self.r.scan_iter(match=f"{self.p}chatroom:*"):
            room_id = key.removeprefix(f"{self.p}chatroom:")
            if wxid in self._room(room_id)["members"]:
                self.remove_member(room_id, wxid)
        self.r.delete(f"{self.p}person:{wxid}")

    def unfriend(self, account_wxid: str, friend: str) -> None:
        """The account's owner deletes `friend` on the phone; WeChat pushes the deletion to the account."""
        self.r.zrem(f"{self.p}contacts:{account_wxid}", friend)
        self._push(account_wxid, "deleted", friend)

    def add_member(self, chatroom: str, wxid: str) -> None:
        self._change_members(chatroom, wxid, joins=True)

    def remove_member(self, chatroom: str, wxid: str) -> None:
        self._change_members(chatroom, wxid, joins=False)

    def add_person(self, person: Person) -> None:
        self._put_person(self.r, person)

    def pending_requests(self, wxid: str) -> list[str]:
        """The friend-request XML of every request waiting for account `wxid`, as WeChat delivers it."""
        return [
            friend_request_xml(FriendRequest.model_validate_json(doc))
            for doc in self.r.hvals(f"{self.p}pending:{wxid}")
        ]

    def verify_log(self) -> list[list[Any]]:
        """Every friend request sent or accepted: [uin, opcode, other wxid, scene]."""
        return [json.loads(row) for row in self.r.lrange(f"{self.p}log:verify", 0, -1)]

    def accounts(self) -> list[GeweAccount]:
        """Every account, with the appId it has when the simulation is served over the Gewechat API."""
        with _redis_errors():
            rows = [self.r.hgetall(f"{self.p}account:{uin}") for uin in sorted(self.r.smembers(f"{self.p}accounts"))]
        return [GeweAccount.model_validate(row) for row in rows if row]

    def uin_of_app(self, app_id: str) -> str | None:
        with _redis_errors():
            uin = self.r.get(f"{self.p}app:{app_id}")
        return str(uin) if uin else None

    def placement(self, uin: str) -> Session | None:
        """Where the account is logged in, online or not."""
        with _redis_errors():
            found = self._account(uin)
        return found.session() if found else None

    def nickname(self, wxid: str) -> str:
        with _redis_errors():
            return str(self._person(wxid)["nickname"])

    def wxid_of_v1(self, v1: str) -> str | None:
        """Whom an encryptusername (v1) this simulation issued stands for."""
        with _redis_errors():
            wxid = self.r.get(f"{self.p}v1:{v1}")
        return str(wxid) if wxid else None

    def contacts_of(self, wxid: str) -> list[str]:
        return list(self.r.zrange(f"{self.p}contacts:{wxid}", 0, -1))

    # -- inside ------------------------------------------------------------------------------------------------

    def _enter(self, uin: str) -> Session:
        """A WeChat call's start: the account's session, then latency and injected faults, as a real protocol server
        would show them."""
        with _redis_errors():
            row, latency_ms, fault = self._enter_script(keys=self._enter_keys(uin), args=self._enter_args)
        return self._entered(uin, row, latency_ms, fault)

    def _enter_keys(self, uin: str) -> list[str]:
        return [f"{self.p}account:{uin}", f"{self.p}faults"]

    def _entered(self, uin: str, row: list[str], latency_ms: int, fault: str) -> Session:
        fields = dict(zip(row[::2], row[1::2], strict=True))
        me = self._hosted(
            uin, _Account.model_validate({**fields, "online": fields.get("online") == "1"}) if row else None
        )
        if latency_ms:
            if latency_ms / 1000 > self.timeout_s:
                time.sleep(self.timeout_s)
                raise error_for_code(-1, f"no answer within {self.timeout_s} s")
            time.sleep(latency_ms / 1000)
        if fault == "transient":
            raise error_for_code(-1, "the protocol server timed out")
        if fault == "too_frequent":
            raise error_for_code(1205, "operation too frequent")
        return me

    def _account(self, uin: str) -> _Account | None:
        row = self.r.hgetall(f"{self.p}account:{uin}")
        return _Account.model_validate({**row, "online": row.get("online") == "1"}) if row else None

    def _person(self, wxid: str) -> dict[str, Any]:
        doc = self.r.get(f"{self.p}person:{wxid}")
        if doc is None:
            raise error_for_code(-4, f"no WeChat user {wxid}")
        person: dict[str, Any] = json.loads(doc)
        return person

    def _room(self, chatroom: str) -> dict[str, Any]:
        doc = self.r.get(f"{self.p}chatroom:{chatroom}")
        if doc is None:
            raise error_for_code(-4, f"no chatroom {chatroom}")
        room: dict[str, Any] = json.loads(doc)
        return room

    def _key_of(self, username: str) -> str:
        kind = "chatroom" if username.endswith("@chatroom") else "person"
        return f"{self.p}{kind}:{username}"

    def _put_person(self, pipe: Any, person: Person) -> None:
        doc = person.model_dump(include=set(Person.model_fields))
        doc.update(
            quan_pin=quan_pin(person.nickname),
            initials=initials(person.nickname),
            small_head=person.head or _head_url(person.wxid, 132),
            big_head=person.head or _head_url(person.wxid, 0),
        )
        pipe.set(f"{self.p}person:{person.wxid}", json.dumps(doc))
        pipe.set(f"{self.p}v1:{self._v1(person.wxid)}", person.wxid)
        for term in (person.alias, person.phone, person.qq):
            if term:
                pipe.set(f"{self.p}find:{term.lower()}", person.wxid)
        if not person.wxid.startswith("wxid_"):
            pipe.set(f"{self.p}find:{person.wxid.lower()}", person.wxid)

    def _put_account(self, pipe: Any, account: Account) -> None:
        pipe.sadd(f"{self.p}accounts", account.uin)
        pipe.set(f"{self.p}uin:{account.wxid}", account.uin)
        pipe.set(f"{self.p}app:{account.app_id}", account.uin)
        pipe.hset(
            f"{self.p}account:{account.uin}",
            mapping={
                "uin": account.uin,
                "wxid": account.wxid,
                "server_id": account.server_id,
                "child_id": account.child_id,
                "loginer": account.loginer,
                "online": "1" if account.online else "0",
                "app_id": account.app_id,
            },
        )

    def _put_room(self, room: Chatroom) -> None:
        doc = {**room.model_dump(), "version": 1}
        self.r.set(f"{self.p}chatroom:{room.id}", json.dumps(doc))
        for member in room.members:
            if self.r.exists(f"{self.p}uin:{member}"):
                self.r.zadd(f"{self.p}contacts:{member}", {room.id: self._next_seq()})

    def _change_members(self, chatroom: str, wxid: str, joins: bool) -> None:
        room = self._room(chatroom)
        members: list[str] = room["members"]
        if joins == (wxid in members):
            return
        room["members"] = [*members, wxid] if joins else [m for m in members if m != wxid]
        room["version"] += 1
        self.r.set(f"{self.p}chatroom:{chatroom}", json.dumps(room))
        if self.r.exists(f"{self.p}uin:{wxid}"):
            if joins:
                self.r.zadd(f"{self.p}contacts:{wxid}", {chatroom: self._next_seq()})
            else:
                self.r.zrem(f"{self.p}contacts:{wxid}", chatroom)
        for member in set(members) | {wxid}:
            if self.r.exists(f"{self.p}uin:{member}"):
                self._push(member, "chatroom", chatroom)

    def _raw(self, username: str, doc: dict[str, Any], remark: str) -> RawContact:
        if username.endswith("@chatroom"):
            return RawContact(
                UserName=username,
                NickName=doc["name"],
                ChatRoomOwner=doc["owner"],
                ChatroomVersion=doc["version"],
                ContactType="chatroom",
                ContactFlag=2049,
                ExtInfo=",".join(doc["members"]),
                Remark=remark,
            )
        return RawContact(
            UserName=username,
            NickName=doc["nickname"],
            Remark=remark,
            PYQuanPin=doc["quan_pin"],
            PYInitial=doc["initials"],
            Alias=doc["alias"],
            Sex=doc["sex"],
            Province=doc["province"],
            City=doc["city"],
            Signature=doc["signature"],
            HeadImgUrl=doc["small_head"],
            SmallHeadImgUrl=doc["small_head"],
            BigHeadImgUrl=doc["big_head"],
        )

    def _member(self, wxid: str, person: dict[str, Any], room: dict[str, Any]) -> ChatroomMember:
        return ChatroomMember(
            UserName=wxid,
            NickName=person["nickname"],
            BigHeadImgUrl=person["big_head"],
            SmallHeadImgUrl=person["small_head"],
            InviterUserName=room["owner"] if wxid != room["owner"] else "",
        )

    def _member_of(self, me: str, chatroom: str, username: str) -> str:
        members = self._room(chatroom)["members"]
        if me not in members:
            raise error_for_code(-4, f"{me} is not in {chatroom}")
        if username not in members:
            raise error_for_code(-4, f"{username} is not in {chatroom}")
        return username

    def _v1(self, wxid: str) -> str:
        """A person's encryptusername: always the same, and known (`v1:{v1}`) from when the person was put."""
        return f"v1_{hashlib.sha256((self.p + wxid).encode()).hexdigest()}@stranger"

    def _issue_ticket(self, sender: str, target: str) -> str:
        v2 = f"v2_{secrets.token_hex(32)}@stranger"
        self.r.set(f"{self.p}ticket:{v2}", json.dumps([sender, target]))
        return v2

    def _stranger(self, me: str, v1: str, v2: str) -> str:
        target = self.r.get(f"{self.p}v1:{v1}")
        ticket = self.r.get(f"{self.p}ticket:{v2}")
        if target is None:
            raise error_for_code(-4, "unknown v1 (encryptusername)")
        if ticket is None or json.loads(ticket) != [me, target]:
            raise error_for_code(-3, "the v2 ticket was not issued to this account for this user")
        return str(target)

    def _request(self, sender: str, to: str, content: str, scene: int, chatroom: str, push: bool = True) -> None:
        """`sender` asks `to` to be friends: the request waits for `to`, and is pushed to them as WeChat does (a
        fixture's requests were pushed before the simulation began)."""
        person = self._person(sender)
        request = FriendRequest(
            fromusername=sender,
            encryptusername=self._v1(sender),
            ticket=self._issue_ticket(sender, to),
            scene=int(scene),
            fromnickname=person["nickname"],
            content=content,
            fullpy=person["quan_pin"].lower(),
            shortpy=person["initials"],
            sex=person["sex"],
            alias=person["alias"],
            country="CN",
            province=person["province"],
            city=person["city"],
            sign=person["signature"],
            bigheadimgurl=person["big_head"],
            smallheadimgurl=person["small_head"],
            chatroomusername=chatroom,
        )
        self.r.hset(f"{self.p}pending:{to}", sender, request.model_dump_json())
        if push:
            self._push(to, "request", sender, friend_request_xml(request))

    def _accept(self, me: Session, v1: str, v2: str) -> str:
        sender = self.r.get(f"{self.p}v1:{v1}")
        doc = self.r.hget(f"{self.p}pending:{me.wxid}", sender) if sender else None
        if sender is None or doc is None or FriendRequest.model_validate_json(doc).ticket != v2:
            raise error_for_code(-4, "no such friend request waiting")
        self.r.rpush(f"{self.p}log:verify", json.dumps([me.uin, int(Opcode.ACCEPT), sender, 0]))
        self.r.hdel(f"{self.p}pending:{me.wxid}", sender)
        self._befriend(me.wxid, sender)
        self._push(sender, "contact", me.wxid)
        return str(sender)

    def _befriend(self, a: str, b: str, seq: int | None = None, pipe: Any = None) -> None:
        target = pipe or self.r
        seq = seq or self._next_seq()
        target.zadd(f"{self.p}contacts:{a}", {b: seq}, nx=True)
        target.zadd(f"{self.p}contacts:{b}", {a: seq}, nx=True)

    def _next_seq(self) -> int:
        return int(self.r.incr(f"{self.p}seq"))

    def _accounts_with(self, wxid: str) -> list[str]:
        """The accounts that have `wxid` in their contact list."""
        accounts = [self.r.hget(f"{self.p}account:{uin}", "wxid") for uin in self.r.smembers(f"{self.p}accounts")]
        return [a for a in accounts if a and self.r.zscore(f"{self.p}contacts:{a}", wxid) is not None]

    def _push(self, account_wxid: str, kind: str, username: str, content: str = "") -> None:
        """What WeChat pushes to an account; nothing when `account_wxid` is not an operated account."""
        uin = self.r.get(f"{self.p}uin:{account_wxid}")
        if uin is None:
            return
        session = self._account(uin)
        if session is None:
            return
        self.r.xadd(
            stream_key(self.p, session.server_id, session.child_id),
            entry(uin, kind, username, content),
            maxlen=MAXLEN,
            approximate=True,
        )


def from_settings(settings: Settings) -> SimulatedWeChat:
    """The `simulated` entry point: connects, and loads the configured fixture if no simulation is there yet."""
    client = redis.Redis.from_url(settings.sim_url, decode_responses=True)
    sim = SimulatedWeChat(
        client,
        settings.server_id,
        settings.child_ids,
        prefix=settings.sim_prefix,
        page_size=settings.sim_page_size,
        timeout_s=settings.wechat_timeout_s,
    )
    with _redis_errors(), client.lock(sim.lock_key, timeout=120, blocking_timeout=120):
        if not client.exists(f"{settings.sim_prefix}accounts"):
            sim.load_file(settings.fixture)
    return sim
