"""What the contact module needs from WeChat: one interface, its data and its error model.

A deployment plugs in the adapter for its own protocol server through the `contactq.protocol` entry-point group: the
entry point names a factory `(Settings) -> WeChatClient`, chosen by `CONTACTQ_PROTOCOL`. Every backend is held to the
shared contract in tests/protocol/contract.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from importlib.metadata import entry_points
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from contactq.errors import (
    ConfigurationError,
    NotFound,
    NotOnline,
    ProtocolFailure,
    Refused,
    TooFrequent,
    WeChatError,
    WeChatTimeout,
)
from contactq.settings import Settings

ENTRY_POINT_GROUP = "contactq.protocol"


class Opcode(IntEnum):
    """WeChat's verify-user operation."""

    ADD = 2
    ACCEPT = 3


class Scene(IntEnum):
    """How the two people found each other (`type` in requests, `scene` in the friend-request XML): the common
    scenes. WeChat uses others too (6, 17, ...); every call takes a scene as a plain non-negative int."""

    QQ = 1
    EMAIL = 2
    WECHAT_ID = 3
    CHATROOM = 14
    PHONE = 15
    NEARBY = 18
    DRIFT_BOTTLE = 25
    SHAKE = 29
    QR_CODE = 30


class Session(BaseModel):
    """A WeChat account logged in on a protocol server child."""

    uin: str
    wxid: str
    server_id: int
    child_id: int
    loginer: int


class SearchResult(BaseModel):
    v1: str  # encryptusername of the stranger
    v2: str  # the ticket a friend request must carry
    nickname: str
    small_head: str
    quan_pin: str


class RawContact(BaseModel):
    """A contact as WeChat describes it; the pinyin fields may be missing and are then computed."""

    model_config = ConfigDict(extra="ignore")

    UserName: str
    NickName: str = ""
    Remark: str = ""
    PYQuanPin: str | None = None
    PYInitial: str | None = None
    RemarkPYQuanPin: str | None = None
    RemarkPYInitial: str | None = None
    Alias: str = ""
    Sex: int = 0
    Province: str = ""
    City: str = ""
    Signature: str = ""
    HeadImgUrl: str = ""
    SmallHeadImgUrl: str = ""
    BigHeadImgUrl: str = ""
    ContactType: str = ""
    ContactFlag: int = 3
    VerifyFlag: int = 0
    EncryptUsername: str = ""
    LabelLists: str = ""
    ChatroomVersion: int = 0
    ChatRoomOwner: str = ""
    ExtInfo: str = ""
    ExtInfoExt: str = ""
    MsgType: int = 2
    Uin: int = 0
    Seq: str = ""


class ChatroomMember(BaseModel):
    UserName: str
    NickName: str = ""
    DisplayName: str = ""
    BigHeadImgUrl: str = ""
    SmallHeadImgUrl: str = ""
    InviterUserName: str = ""


class ContactPage(BaseModel):
    """One page of an account's contact list (friends and chatrooms), in WeChat's sequence order."""

    usernames: list[str]
    next_seq: int
    more: bool
    # False when the server answered from a cache that may lack the latest changes: a contact it lacks is not gone.
    complete: bool = True


class PushedChange(BaseModel):
    """A change WeChat pushes to an account: a contact added or changed, deleted, a chatroom changed, the account
    came online (`login`, `username` is the account's own wxid), or a friend request arrived (`request`, `username`
    is the sender, `content` the request's `<msg>` XML)."""

    id: str
    uin: str
    child_id: int
    kind: Literal["contact", "deleted", "chatroom", "login", "request"]
    username: str
    content: str = ""


class WeChatClient(Protocol):
    """The WeChat side of one worker: the sessions of one protocol server's children.

    Every call may raise a `contactq.errors.WeChatError`: `NotOnline` when the uin has no live session on this
    worker's children, `NotFound`, `TooFrequent`, `Refused`, `WeChatTimeout` (retried) or `ProtocolFailure`.
    """

    def sessions(self, child_id: int) -> list[Session]:
        """The accounts this server hosts on one child, online or not."""
        ...

    def session(self, uin: str) -> Session:
        """The live session of `uin` on one of this worker's children, or `NotOnline`."""
        ...

    def search(self, uin: str, query: str) -> SearchResult:
        """Search a stranger by WeChat ID, QQ number or phone number."""
        ...

    def verify_user(
        self, uin: str, opcode: Opcode, v1: str, v2: str, content: str, scene: int, chatroom: str = ""
    ) -> str:
        """Send (ADD) or accept (ACCEPT) a friend request; returns the other person's wxid when WeChat knows it.

        For ADD from a chatroom, `v1` is the member's wxid and `chatroom` the room; `v2` may be empty.
        """
        ...

    def contact_details(self, uin: str, usernames: Sequence[str]) -> list[RawContact]:
        """Details of friends and chatrooms of the account; unknown names are left out."""
        ...

    def contact_list(self, uin: str, seq: int) -> ContactPage:
        """The page of the contact list that starts after sequence `seq` (0 for the first)."""
        ...

    def member_detail(self, uin: str, chatroom: str, username: str) -> ChatroomMember:
        """Details of one member of a chatroom the account is in."""
        ...

    def set_remark(self, uin: str, username: str, remark: str) -> None: ...

    def chatroom_members(self, uin: str, chatroom: str) -> list[ChatroomMember]: ...

    def receive_changes(self, child_id: int, consumer: str, block_ms: int) -> list[PushedChange]:
        """Changes pushed to the accounts of one child, waiting up to `block_ms`; unacknowledged ones come again."""
        ...

    def ack_changes(self, child_id: int, ids: Sequence[str]) -> None: ...


# WeChat's own return codes, and what they mean to a caller of the contact module.
WECHAT_CODES: dict[int, type[WeChatError]] = {
    -4: NotFound,
    -24: Refused,
    -13: NotOnline,
    1205: TooFrequent,
    -1: WeChatTimeout,
}


def error_for_code(code: int, message: str) -> WeChatError:
    """The error for a non-zero WeChat return code; codes we do not know are protocol failures."""
    return WECHAT_CODES.get(code, ProtocolFailure)(f"{message} (WeChat code {code})", wechat_code=code)


ClientFactory = Callable[[Settings], WeChatClient]


def load_client(settings: Settings) -> WeChatClient:
    """The backend named by `settings.protocol`, from the `contactq.protocol` entry points."""
    found = entry_points(group=ENTRY_POINT_GROUP, name=settings.protocol)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        raise ConfigurationError(f"no WeChat protocol backend {settings.protocol!r}; installed: {known}")
    factory: ClientFactory = next(iter(found)).load()
    return factory(settings)
