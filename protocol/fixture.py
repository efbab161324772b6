"""The JSON fixture that seeds the simulated WeChat: accounts, people, friendships, chatrooms, pending requests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contactq.errors import ConfigurationError
from protocol.client import Scene


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wxid: str
    nickname: str
    alias: str = ""
    phone: str = ""
    qq: str = ""
    sex: int = 0
    province: str = ""
    city: str = ""
    signature: str = ""
    # How this person answers a friend request: at once, by hand (the request waits), or never (WeChat refuses).
    accept: Literal["auto", "manual", "never"] = "manual"
    head: str = ""


class Account(Person):
    """A WeChat account the platform operates: a person logged in on a protocol server child."""

    uin: str
    server_id: int
    child_id: int
    loginer: int
    online: bool = True
    # The device id a Gewechat-compatible server knows the account by, when the simulation is served over its API.
    app_id: str = ""

    @model_validator(mode="after")
    def _default_app_id(self) -> Account:
        self.app_id = self.app_id or f"wx_sim_{self.uin}"
        return self


class Friendship(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    account: str
    friend: str
    remark: str = ""


class Chatroom(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"@chatroom$")
    name: str
    owner: str
    members: list[str]


class PendingRequest(BaseModel):
    """A friend request `sender` sent to the account `to`, waiting to be accepted."""

    model_config = ConfigDict(extra="forbid")

    to: str
    sender: str
    content: str = ""
    scene: int = Field(default=Scene.WECHAT_ID, ge=0)


class Fixture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[Account]
    people: list[Person] = []
    friendships: list[Friendship] = []
    chatrooms: list[Chatroom] = []
    pending_requests: list[PendingRequest] = []

    @model_validator(mode="after")
    def _references_known(self) -> Fixture:
        known = {p.wxid for p in self.people} | {a.wxid for a in self.accounts}
        accounts = {a.wxid for a in self.accounts}
        named = [f.friend for f in self.friendships] + [r.sender for r in self.pending_requests]
        named += [m for room in self.chatrooms for m in room.members] + [room.owner for room in self.chatrooms]
        unknown = sorted(set(named) - known)
        not_accounts = sorted({f.account for f in self.friendships} | {r.to for r in self.pending_requests})
        not_accounts = [wxid for wxid in not_accounts if wxid not in accounts]
        if unknown:
            raise ValueError(f"unknown people: {unknown}")
        if not_accounts:
            raise ValueError(f"friendships and requests must belong to accounts, not {not_accounts}")
        return self


DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "default.json"


def load_fixture(path: Path | None = None) -> Fixture:
    """The fixture at `path`, or the default one shipped beside this module."""
    path = path or DEFAULT_FIXTURE
    try:
        return Fixture.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as e:
        raise ConfigurationError(f"cannot load the simulated WeChat fixture {path}: {e}") from e
