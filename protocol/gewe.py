"""The WeChat side on a Gewechat-compatible iPad-protocol server (`CONTACTQ_PROTOCOL=gewe`).

Every call is a `POST {gewe_base_url}{endpoint}` with the account's `appId` in a JSON body and the `X-GEWE-TOKEN`
header; every answer is `{"ret", "msg", "data"}`, `ret` 200 on success. Gewechat's `v3`/`v4` are our v1/v2.

| interface call   | endpoint                                                                  | repeated on failure |
|------------------|---------------------------------------------------------------------------|---------------------|
| search           | /contacts/search                                                          | yes                 |
| verify_user      | /contacts/addContacts (option 2 send, 3 accept); a chatroom member:      | no                  |
|                  | /group/addGroupMemberAsFriend; then /contacts/getBriefInfo for the wxid  |                     |
| contact_details  | /contacts/getDetailInfo (100 per call), /group/getChatroomInfo per room  | yes                 |
| contact_list     | /contacts/fetchContactsList, its cache when it times out (one page)      | yes                 |
| member_detail    | /group/getChatroomMemberDetail                                            | yes                 |
| chatroom_members | /group/getChatroomMemberList                                              | yes                 |
| set_remark       | /contacts/setFriendRemark                                                 | yes (idempotent)    |
| session          | the configured accounts; /login/checkOnline after an Offline callback    | yes                 |

Pushed changes come from the callbacks endpoint (contactq.callbacks) through a Redis stream per server child.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from contactq.errors import (
    NotFound,
    NotOnline,
    OutcomeUnknown,
    ProtocolFailure,
    TooFrequent,
    Unreachable,
    WeChatError,
    WeChatTimeout,
    redis_errors,
)
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
from protocol.pinyin import quan_pin
from protocol.pushstream import PushStreams

PUSH_PREFIX = "contactq:gewe:"
# appIds a server reported offline (an `Offline` callback); checked with /login/checkOnline before the next call.
OFFLINE_KEY = "contactq:gewe:offline"
DETAIL_BATCH = 100
ADD_OPTION = {Opcode.ADD: 2, Opcode.ACCEPT: 3}

# Words of a failed answer's `msg`, when it carries no WeChat code, and what they mean.
_MSG_ERRORS: tuple[tuple[tuple[str, ...], type[WeChatError]], ...] = (
    (("不在线", "离线", "未登录", "已退出", "掉线", "offline", "not online"), NotOnline),
    (("频繁", "too frequent"), TooFrequent),
    (("不存在", "未找到", "not found"), NotFound),
)


class Answer(BaseModel):
    """Every Gewechat answer."""

    model_config = ConfigDict(extra="ignore")

    ret: int
    msg: str = ""
    data: Any = None


def error_for_answer(endpoint: str, answer: Answer) -> WeChatError:
    """A failed answer on the status table: WeChat's own code when `data.code` carries one, else the words of `msg`;
    a refused token and anything unknown are protocol failures."""
    message = f"{endpoint}: {answer.msg or 'failed'} (ret {answer.ret})"
    code = answer.data.get("code") if isinstance(answer.data, dict) else None
    if isinstance(code, int | str) and str(code).lstrip("-").isdigit() and int(code) != 0:
        return error_for_code(int(code), message)
    if answer.ret in (401, 403):
        return ProtocolFailure(f"{message}: the server refused the token")
    lowered = answer.msg.lower()
    for words, error in _MSG_ERRORS:
        if any(word in lowered for word in words):
            return error(message)
    return ProtocolFailure(message)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Found(_Wire):
    v3: str = ""
    v4: str = ""
    nickName: str = ""
    smallHeadImgUrl: str = ""
    bigHeadImgUrl: str = ""
    quanPin: str = ""


class Detail(_Wire):
    """A contact of /contacts/getDetailInfo and getBriefInfo."""

    userName: str = ""
    nickName: str = ""
    pyInitial: str | None = None
    quanPin: str | None = None
    sex: int = 0
    remark: str = ""
    remarkPyInitial: str | None = None
    remarkQuanPin: str | None = None
    signature: str = ""
    alias: str = ""
    province: str = ""
    city: str = ""
    bigHeadImgUrl: str = ""
    smallHeadImgUrl: str = ""
    labelList: str = ""


class Member(_Wire):
    wxid: str = ""
    userName: str = ""
    nickName: str = ""
    displayName: str = ""
    inviterUserName: str = ""
    bigHeadImgUrl: str = ""
    smallHeadImgUrl: str = ""

    def member(self) -> ChatroomMember:
        return ChatroomMember(
            UserName=self.wxid or self.userName,
            NickName=self.nickName,
            DisplayName=self.displayName,
            BigHeadImgUrl=self.bigHeadImgUrl,
            SmallHeadImgUrl=self.smallHeadImgUrl,
            InviterUserName=self.inviterUserName,
        )


class Room(_Wire):
    chatroomId: str = ""
    nickName: str = ""
    remark: str = ""
    chatRoomOwner: str = ""
    smallHeadImgUrl: str = ""
    memberList: list[Member] = []


class ContactList(_Wire):
    friends: list[str] = []
    chatrooms: list[str] = []


def raw_contact(detail: Detail) -> RawContact:
    return RawContact(
        UserName=detail.userName,
        NickName=detail.nickName,
        Remark=detail.remark,
        PYQuanPin=detail.quanPin or None,
        PYInitial=detail.pyInitial or None,
        RemarkPYQuanPin=detail.remarkQuanPin or None,
        RemarkPYInitial=detail.remarkPyInitial or None,
        Alias=detail.alias,
        Sex=detail.sex,
        Province=detail.province,
        City=detail.city,
        Signature=detail.signature,
        HeadImgUrl=detail.smallHeadImgUrl,
        SmallHeadImgUrl=detail.smallHeadImgUrl,
        BigHeadImgUrl=detail.bigHeadImgUrl,
        LabelLists=detail.labelList,
    )


def raw_chatroom(room: Room) -> RawContact:
    return RawContact(
        UserName=room.chatroomId,
        NickName=room.nickName,
        Remark=room.remark,
        ChatRoomOwner=room.chatRoomOwner,
        ContactType="chatroom",
        ContactFlag=2049,
        ExtInfo=",".join(m.wxid or m.userName for m in room.memberList),
        SmallHeadImgUrl=room.smallHeadImgUrl,
        HeadImgUrl=room.smallHeadImgUrl,
    )


class GeweWeChat:
    """The accounts of one server's children, reached over its HTTP API."""

    def __init__(
        self,
        http: httpx.Client,
        store: redis.Redis,
        accounts: Sequence[GeweAccount],
        server_id: int,
        child_ids: Sequence[int],
    ) -> None:
        self.http = http
        self.r = store
        self.server_id = server_id
        self.child_ids = list(child_ids)
        self.accounts = {a.uin: a for a in accounts}
        self.pushes = PushStreams(store, PUSH_PREFIX, server_id)

    # -- sessions ------------------------------------------------------------------------------------------------

    def sessions(self, child_id: int) -> list[Session]:
        return [_session(a) for a in self.accounts.values() if a.server_id == self.server_id and a.child_id == child_id]

    def session(self, uin: str) -> Session:
        account = self.accounts.get(uin)
        if account is None:
            raise NotOnline(f"uin {uin} is not configured for server {self.server_id} (gewe_accounts)")
        if account.server_id != self.server_id or account.child_id not in self.child_ids:
            raise NotOnline(
                f"uin {uin} is logged in on server {account.server_id} child {account.child_id}, "
                f"not on server {self.server_id} children {self.child_ids}"
            )
        with redis_errors("Gewechat account state"):
            reported_offline = bool(self.r.sismember(OFFLINE_KEY, account.app_id))
        if reported_offline:
            # The server said it went offline; it may have logged in again since, and Gewechat posts no callback then.
            if not self.online(uin):
                raise error_for_code(-13, f"uin {uin} is offline")
            with redis_errors("Gewechat account state"):
                self.r.srem(OFFLINE_KEY, account.app_id)
        return _session(account)

    def online(self, uin: str) -> bool:
        """Whether the server has the account logged in (/login/checkOnline)."""
        return bool(self._call("/login/checkOnline", self.accounts[uin], {}, safe=True))

    # -- the WeChatClient interface -------------------------------------------------------------------------------

    def search(self, uin: str, query: str) -> SearchResult:
        account = self._account(uin)
        found = Found.model_validate(self._call("/contacts/search", account, {"contactsInfo": query}, safe=True) or {})
        if not found.v3:
            raise error_for_code(-4, f"no WeChat user {query!r}")
        return SearchResult(
            v1=found.v3,
            v2=found.v4,
            nickname=found.nickName,
            small_head=found.smallHeadImgUrl,
            quan_pin=found.quanPin or quan_pin(found.nickName),
        )

    def verify_user(
        self, uin: str, opcode: Opcode, v1: str, v2: str, content: str, scene: int, chatroom: str = ""
    ) -> str:
        account = self._account(uin)
        if opcode == Opcode.ADD and chatroom:
            member = {"chatroomId": chatroom, "memberWxid": v1, "content": content}
            self._call("/group/addGroupMemberAsFriend", account, member, safe=False)
            return v1
        body: dict[str, Any] = {"scene": scene, "option": ADD_OPTION[opcode], "v3": v1, "v4": v2, "content": content}
        self._call("/contacts/addContacts", account, body, safe=False)
        # The request went out; which wxid it went to is a separate, harmless question.
        try:
            briefs = self._details("/contacts/getBriefInfo", account, [v1])
        except WeChatError:
            return ""
        return briefs[0].userName if briefs else ""

    def contact_details(self, uin: str, usernames: Sequence[str]) -> list[RawContact]:
        account = self._account(uin)
        wanted = [n for n in usernames if not n.endswith("@chatroom")]
        people: dict[str, RawContact] = {}
        for start in range(0, len(wanted), DETAIL_BATCH):
            for detail in self._details("/contacts/getDetailInfo", account, wanted[start : start + DETAIL_BATCH]):
                if detail.userName in wanted:
                    people[detail.userName] = raw_contact(detail)
        found = []
        for name in usernames:
            if name.endswith("@chatroom"):
                try:
                    found.append(raw_chatroom(self._room(account, name)))
                except NotFound:
                    continue
            elif name in people:
                found.append(people[name])
        return found

    def contact_list(self, uin: str, seq: int) -> ContactPage:
        """Gewechat answers the whole list at once: one page, `seq` counting the contacts already read; from the
        server's cache, incomplete, should the full list time out."""
        account = self._account(uin)
        try:
            data, complete = self._call("/contacts/fetchContactsList", account, {}, safe=True), True
        except WeChatTimeout:
            data, complete = self._call("/contacts/fetchContactsListCache", account, {}, safe=True), False
        listed = ContactList.model_validate(data or {})
        names = list(dict.fromkeys([*listed.friends, *listed.chatrooms]))
        return ContactPage(usernames=names[seq:], next_seq=len(names), more=False, complete=complete)

    def member_detail(self, uin: str, chatroom: str, username: str) -> ChatroomMember:
        account = self._account(uin)
        body = {"chatroomId": chatroom, "memberWxids": [username]}
        data = self._call("/group/getChatroomMemberDetail", account, body, safe=True)
        for row in data if isinstance(data, list) else []:
            member = _parse(Member, row, "/group/getChatroomMemberDetail")
            if username in (member.wxid, member.userName):
                return member.member()
        raise error_for_code(-4, f"{username} is not in {chatroom}")

    def set_remark(self, uin: str, username: str, remark: str) -> None:
        account = self._account(uin)
        self._call("/contacts/setFriendRemark", account, {"wxid": username, "remark": remark}, safe=True)

    def chatroom_members(self, uin: str, chatroom: str) -> list[ChatroomMember]:
        account = self._account(uin)
        data = self._call("/group/getChatroomMemberList", account, {"chatroomId": chatroom}, safe=True)
        room = _parse(Room, data or {}, "/group/getChatroomMemberList")
        return [m.member() for m in room.memberList]

    def receive_changes(self, child_id: int, consumer: str, block_ms: int) -> list[PushedChange]:
        return self.pushes.receive(child_id, consumer, block_ms)

    def ack_changes(self, child_id: int, ids: Sequence[str]) -> None:
        self.pushes.ack(child_id, ids)

    # -- inside ----------------------------------------------------------------------------------------------------

    def _account(self, uin: str) -> GeweAccount:
        self.session(uin)
        return self.accounts[uin]

    def _room(self, account: GeweAccount, chatroom: str) -> Room:
        data = self._call("/group/getChatroomInfo", account, {"chatroomId": chatroom}, safe=True)
        room = _parse(Room, data or {}, "/group/getChatroomInfo")
        if room.chatroomId != chatroom:
            raise error_for_code(-4, f"no chatroom {chatroom}")
        return room

    def _details(self, endpoint: str, account: GeweAccount, wxids: Sequence[str]) -> list[Detail]:
        data = self._call(endpoint, account, {"wxids": list(wxids)}, safe=True)
        return [_parse(Detail, row, endpoint) for row in (data if isinstance(data, list) else [])]

    def _call(self, endpoint: str, account: GeweAccount, body: dict[str, Any], safe: bool) -> Any:
        """One call; a call that is `safe` to repeat is tried once more when the server could not be reached or
        timed out. One that is not (a friend request, an accept) that timed out may have gone out: OutcomeUnknown,
        which no retry repeats; only one that never reached the server is left to the task's retry."""
        request = {"appId": account.app_id, **body}
        try:
            return self._post(endpoint, request)
        except Unreachable:
            if not safe:
                raise  # nothing went out: the task's retry may send it
        except WeChatTimeout as e:
            if not safe:
                raise OutcomeUnknown(f"{e.message}; it may have reached WeChat, so it is not sent again") from e
        return self._post(endpoint, request)

    def _post(self, endpoint: str, body: dict[str, Any]) -> Any:
        try:
            response = self.http.post(endpoint, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            raise Unreachable(f"{endpoint}: the protocol server cannot be reached: {e}") from e
        except httpx.TimeoutException as e:
            raise WeChatTimeout(f"{endpoint}: no answer in time ({e.__class__.__name__})") from e
        except httpx.TransportError as e:
            raise WeChatTimeout(f"{endpoint}: the protocol server cannot be reached: {e}") from e
        if response.status_code in (502, 503, 504):
            raise WeChatTimeout(f"{endpoint}: HTTP {response.status_code} from the protocol server")
        if response.status_code in (401, 403):
            raise ProtocolFailure(f"{endpoint}: HTTP {response.status_code}: the server refused the token")
        if response.status_code != 200:
            raise ProtocolFailure(f"{endpoint}: HTTP {response.status_code} from the protocol server")
        try:
            answer = Answer.model_validate_json(response.content)
        except ValidationError as e:
            raise ProtocolFailure(f"{endpoint}: not a Gewechat answer: {response.text[:200]!r}") from e
        if answer.ret != 200:
            raise error_for_answer(endpoint, answer)
        return answer.data


def _session(account: GeweAccount) -> Session:
    return Session(
        uin=account.uin,
        wxid=account.wxid,
        server_id=account.server_id,
        child_id=account.child_id,
        loginer=account.loginer,
    )


W = TypeVar("W", bound=_Wire)


def _parse(model: type[W], row: Any, endpoint: str) -> W:
    try:
        return model.model_validate(row)
    except ValidationError as e:
        raise ProtocolFailure(f"{endpoint}: unexpected answer: {e.errors()[0]['msg']}") from e


def http_client(settings: Settings) -> httpx.Client:
    """A pooled client with timeouts; connection attempts that failed are retried by the transport (nothing was
    sent), everything else by `GeweWeChat._call` where it is safe."""
    transport = httpx.HTTPTransport(
        retries=1,
        limits=httpx.Limits(
            max_connections=settings.gewe_max_connections, max_keepalive_connections=settings.gewe_max_connections
        ),
    )
    return httpx.Client(
        base_url=settings.gewe_base_url,
        headers={"X-GEWE-TOKEN": settings.gewe_token_value()},
        timeout=httpx.Timeout(settings.wechat_timeout_s, connect=min(settings.wechat_timeout_s, 5.0)),
        transport=transport,
    )


def from_settings(settings: Settings) -> GeweWeChat:
    """The `gewe` entry point."""
    return GeweWeChat(
        http_client(settings),
        redis.Redis.from_url(settings.store_url, decode_responses=True),
        settings.gewe_accounts,
        settings.server_id,
        settings.child_ids,
    )
