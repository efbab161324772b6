"""`contactq sim serve`: the simulated WeChat behind the Gewechat HTTP API, posting callbacks like a real server.

It answers the endpoints the `gewe` backend calls (see protocol.gewe) from the same simulated state the in-process
backend uses, so tests and the demo steer it the same way. The changes the simulation would push to an account are
posted as Gewechat callbacks to the URL given by `/tools/setCallback`, each until the receiver answers 2xx.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contactq.errors import NotFound, NotOnline, WeChatError
from protocol.client import ChatroomMember, Opcode, PushedChange, RawContact, Scene
from protocol.gewe_callbacks import callback_for
from protocol.pushstream import PushStreams
from protocol.simulated import SimulatedWeChat

log = logging.getLogger(__name__)

API_BASE = "/v2/api"
POSTER_GROUP = "gewe-serve"
_RETRY_PAUSE_S = 0.5


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    appId: str = Field(min_length=1)
    contactsInfo: str = ""
    wxids: list[str] = []
    chatroomId: str = ""
    memberWxid: str = ""
    memberWxids: list[str] = []
    wxid: str = ""
    remark: str = ""
    scene: int = Field(default=int(Scene.WECHAT_ID), ge=0)
    option: int = 0
    v3: str = ""
    v4: str = ""
    content: str = ""


def _detail(raw: RawContact) -> dict[str, Any]:
    return {
        "userName": raw.UserName,
        "nickName": raw.NickName,
        "pyInitial": raw.PYInitial,
        "quanPin": raw.PYQuanPin,
        "sex": raw.Sex,
        "remark": raw.Remark,
        "signature": raw.Signature,
        "alias": raw.Alias,
        "country": "CN",
        "province": raw.Province,
        "city": raw.City,
        "bigHeadImgUrl": raw.BigHeadImgUrl,
        "smallHeadImgUrl": raw.SmallHeadImgUrl,
        "labelList": raw.LabelLists,
    }


def _member(m: ChatroomMember) -> dict[str, Any]:
    return {
        "wxid": m.UserName,
        "nickName": m.NickName,
        "displayName": m.DisplayName,
        "inviterUserName": m.InviterUserName,
        "bigHeadImgUrl": m.BigHeadImgUrl,
        "smallHeadImgUrl": m.SmallHeadImgUrl,
    }


class ServedSimulation:
    """The Gewechat endpoints over one simulation; a `SimulatedWeChat` per server and child it hosts."""

    def __init__(self, client: redis.Redis, prefix: str, page_size: int, timeout_s: float) -> None:
        self.r = client
        self.prefix = prefix
        self.page_size = page_size
        self.timeout_s = timeout_s
        self.callback_url = ""
        self._sims: dict[tuple[int, int], SimulatedWeChat] = {}
        self.any = self._sim(0, 0)
        self.endpoints: dict[str, Callable[[SimulatedWeChat, str, _Body], Any]] = {
            "/login/checkOnline": self._check_online,
            "/contacts/search": self._search,
            "/contacts/addContacts": self._add_contacts,
            "/group/addGroupMemberAsFriend": self._add_member_as_friend,
            "/contacts/fetchContactsList": self._contact_list,
            "/contacts/fetchContactsListCache": self._contact_list,
            "/contacts/getDetailInfo": self._details,
            "/contacts/getBriefInfo": self._briefs,
            "/group/getChatroomInfo": self._chatroom,
            "/group/getChatroomMemberList": self._members,
            "/group/getChatroomMemberDetail": self._member_details,
            "/contacts/setFriendRemark": self._set_remark,
        }

    def answer(self, endpoint: str, doc: Any) -> dict[str, Any]:
        """The `{"ret", "msg", "data"}` answer of one call."""
        handler = self.endpoints.get(endpoint)
        if handler is None:
            return {"ret": 404, "msg": f"no endpoint {endpoint}", "data": None}
        try:
            body = _Body.model_validate(doc)
        except ValidationError as e:
            return {"ret": 500, "msg": f"参数错误: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}", "data": None}
        uin = self.any.uin_of_app(body.appId)
        if uin is None:
            return {"ret": 500, "msg": f"设备不存在: {body.appId}", "data": None}
        account = self.any.placement(uin)
        if account is None:
            return {"ret": 500, "msg": f"设备不存在: {body.appId}", "data": None}
        try:
            data = handler(self._sim(account.server_id, account.child_id), uin, body)
        except WeChatError as e:
            code = e.wechat_code if e.wechat_code is not None else -13 if isinstance(e, NotOnline) else None
            return {"ret": 500, "msg": e.message, "data": {"code": code}}
        return {"ret": 200, "msg": "操作成功", "data": data}

    def set_callback(self, url: str) -> None:
        # Kept by the process, not in the simulation's state: resetting the simulation keeps the receiver.
        self.callback_url = url

    def _sim(self, server_id: int, child_id: int) -> SimulatedWeChat:
        key = (server_id, child_id)
        if key not in self._sims:
            self._sims[key] = SimulatedWeChat(
                self.r, server_id, [child_id], self.prefix, self.page_size, self.timeout_s
            )
        return self._sims[key]

    # -- the endpoints ---------------------------------------------------------------------------------------------

    def _check_online(self, sim: SimulatedWeChat, uin: str, body: _Body) -> bool:
        try:
            sim.session(uin)
        except NotOnline:
            return False
        return True

    def _search(self, sim: SimulatedWeChat, uin: str, body: _Body) -> dict[str, Any]:
        found = sim.search(uin, body.contactsInfo)
        return {
            "v3": found.v1,
            "v4": found.v2,
            "nickName": found.nickname,
            "smallHeadImgUrl": found.small_head,
            "bigHeadImgUrl": "",
            "quanPin": found.quan_pin,
            "sex": 0,
            "signature": "",
        }

    def _add_contacts(self, sim: SimulatedWeChat, uin: str, body: _Body) -> None:
        opcodes = {2: Opcode.ADD, 3: Opcode.ACCEPT}
        if body.option not in opcodes:
            raise WeChatError(f"option {body.option} is not simulated (2 send, 3 accept)", wechat_code=-2)
        sim.verify_user(uin, opcodes[body.option], body.v3, body.v4, body.content, body.scene)

    def _add_member_as_friend(self, sim: SimulatedWeChat, uin: str, body: _Body) -> None:
        sim.verify_user(uin, Opcode.ADD, body.memberWxid, "", body.content, Scene.CHATROOM, chatroom=body.chatroomId)

    def _contact_list(self, sim: SimulatedWeChat, uin: str, body: _Body) -> dict[str, Any]:
        names: list[str] = []
        seq = 0
        while True:
            page = sim.contact_list(uin, seq)
            names += page.usernames
            if not page.more:
                break
            seq = page.next_seq
        return {
            "friends": [n for n in names if not n.endswith("@chatroom")],
            "chatrooms": [n for n in names if n.endswith("@chatroom")],
            "ghs": [],
        }

    def _details(self, sim: SimulatedWeChat, uin: str, body: _Body) -> list[dict[str, Any]]:
        people = [n for n in body.wxids if not n.endswith("@chatroom")]
        return [_detail(raw) for raw in sim.contact_details(uin, people)]

    def _briefs(self, sim: SimulatedWeChat, uin: str, body: _Body) -> list[dict[str, Any]]:
        """Contacts, and the strangers behind encryptusernames this simulation issued, as WeChat's GetContact."""
        briefs = self._details(sim, uin, body)
        for name in body.wxids:
            wxid = sim.wxid_of_v1(name)
            if wxid is not None:
                briefs.append({"userName": wxid, "nickName": sim.nickname(wxid)})
        return briefs

    def _chatroom(self, sim: SimulatedWeChat, uin: str, body: _Body) -> dict[str, Any]:
        found = sim.contact_details(uin, [body.chatroomId])
        if not found:
            raise NotFound(f"no chatroom {body.chatroomId}", wechat_code=-4)
        [room] = found
        return {
            "chatroomId": room.UserName,
            "nickName": room.NickName,
            "remark": room.Remark,
            "chatRoomOwner": room.ChatRoomOwner,
            "smallHeadImgUrl": room.SmallHeadImgUrl,
            "memberList": [_member(m) for m in sim.chatroom_members(uin, body.chatroomId)],
        }

    def _members(self, sim: SimulatedWeChat, uin: str, body: _Body) -> dict[str, Any]:
        members = sim.chatroom_members(uin, body.chatroomId)
        return {"memberList": [_member(m) for m in members], "chatroomOwner": "", "adminWxid": []}

    def _member_details(self, sim: SimulatedWeChat, uin: str, body: _Body) -> list[dict[str, Any]]:
        found = []
        for wxid in body.memberWxids:
            try:
                member = sim.member_detail(uin, body.chatroomId, wxid)
            except NotFound:
                continue
            found.append({**_member(member), "userName": member.UserName})
        return found

    def _set_remark(self, sim: SimulatedWeChat, uin: str, body: _Body) -> None:
        sim.set_remark(uin, body.wxid, body.remark)


class CallbackPoster:
    """Posts what the simulation pushes to one server child as callbacks, each until the receiver takes it."""

    def __init__(self, served: ServedSimulation, server_id: int, child_id: int, http: httpx.Client) -> None:
        self.served = served
        self.child_id = child_id
        self.streams = PushStreams(served.r, served.prefix, server_id, group=POSTER_GROUP)
        self.http = http

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                url = self.served.callback_url
                if not url:
                    stop.wait(_RETRY_PAUSE_S)
                    continue
                for change in self.streams.receive(self.child_id, "poster", block_ms=500):
                    self._post(url, change, stop)
            except Exception:
                log.exception("posting callbacks of child %s failed; trying again", self.child_id)
                stop.wait(_RETRY_PAUSE_S)

    def _post(self, url: str, change: PushedChange, stop: threading.Event) -> None:
        app_id = self.served.r.hget(f"{self.served.prefix}account:{change.uin}", "app_id")
        wxid = self.served.r.hget(f"{self.served.prefix}account:{change.uin}", "wxid")
        millis, _, serial = change.id.partition("-")
        data: dict[str, Any] = {"CreateTime": int(millis)}
        if change.kind == "request":
            data.update(MsgId=int(millis) % 2**31, NewMsgId=int(millis) * 1000 + int(serial or 0))
        body = json.dumps(callback_for(change, str(app_id), str(wxid), data), ensure_ascii=False)
        while not stop.is_set():
            try:
                answer = self.http.post(url, content=body, headers={"Content-Type": "application/json"})
            except httpx.HTTPError as e:
                log.warning("callback to %s failed (%s); posting it again", url, e)
            else:
                if answer.status_code < 500:
                    if answer.status_code >= 300:
                        log.warning("callback refused with HTTP %s: %s", answer.status_code, answer.text[:200])
                    break
            stop.wait(_RETRY_PAUSE_S)
        self.streams.ack(self.child_id, [change.id])


def create_app(served: ServedSimulation, token: str) -> Starlette:
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        http = httpx.Client(timeout=10.0)
        children = sorted({(a.server_id, a.child_id) for a in served.any.accounts()})
        threads = [
            threading.Thread(target=CallbackPoster(served, s, c, http).run, args=(stop,), daemon=True)
            for s, c in children
        ]
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        http.close()

    async def call(request: Request) -> JSONResponse:
        if not hmac.compare_digest(request.headers.get("X-GEWE-TOKEN", "").encode(), token.encode()):
            return JSONResponse({"ret": 401, "msg": "token 无效", "data": None})
        try:
            doc = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"ret": 500, "msg": "请求体不是 JSON", "data": None})
        endpoint = "/" + request.path_params["endpoint"]
        if endpoint == "/tools/setCallback":
            url = doc.get("callbackUrl") if isinstance(doc, dict) else None
            if not isinstance(url, str) or not url.startswith("http"):
                return JSONResponse({"ret": 500, "msg": "callbackUrl 无效", "data": None})
            served.set_callback(url)
            return JSONResponse({"ret": 200, "msg": "操作成功", "data": None})
        return JSONResponse(await run_in_threadpool(served.answer, endpoint, doc))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route(API_BASE + "/{endpoint:path}", call, methods=["POST"]), Route("/health", health)],
        lifespan=lifespan,
    )
