"""The message shapes of the contact module: requests, replies, topic events, and secrets masked for display."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from contactq.errors import InvalidRequest, Status

EventKind = Literal["getcontact", "modcontact", "delcontact", "chatroommember", "modchatroommember"]
MQ_TYPES: dict[str, int] = {
    "getcontact": 7,
    "modcontact": 3,
    "delcontact": 4,
    "chatroommember": 5,
    "modchatroommember": 5,
}


class Request(BaseModel):
    """Fields every request carries. Unknown fields are kept (and echoed by the reply, from the raw request)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    # The platform account: `adminUserId` in some of the seed's requests, `loginer` in others.
    loginer: int = Field(validation_alias=AliasChoices("loginer", "adminUserId"))
    uin: str = Field(min_length=1)
    queueName: str | None = None


M = TypeVar("M", bound=BaseModel)


def _not_a_wxid(value: str) -> str:
    if value.startswith("wxid_"):
        raise ValueError("a wxid_ id cannot be searched or added: use a WeChat ID, QQ number or phone number")
    return value


# What searchContact and addContact take: a WeChat ID, QQ or phone number, never a wxid_ id (the seed's rule).
SearchableId = Annotated[str, Field(min_length=1), AfterValidator(_not_a_wxid)]


def parse_request(model: type[M], raw: Any) -> M:
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"a request is a JSON object, not {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}" for err in e.errors())
        raise InvalidRequest(f"invalid request: {problems}") from e


def reply(raw: Any, status: Status, message: str = "", result: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The seed's reply: the request's own fields unchanged, then `status`, `message` and the operation's fields."""
    echo = dict(raw) if isinstance(raw, Mapping) else {}
    return {**echo, "status": int(status), "message": message, **(result or {})}


class Event(BaseModel):
    """The payload of every topic event, exactly the seed's shape."""

    uin: str
    userName: str
    loginer: str
    field: str
    mqType: int
    source: Literal["ipad"] = "ipad"


class Announcement(BaseModel):
    """An event and the kind that names its topic."""

    kind: EventKind
    event: Event


def announcement(kind: EventKind, uin: str, account_wxid: str, loginer: int, field: str) -> Announcement:
    return Announcement(
        kind=kind,
        event=Event(uin=uin, userName=account_wxid, loginer=str(loginer), field=field, mqType=MQ_TYPES[kind]),
    )


_SECRET_KEYS = (
    "v1",
    "v2",
    "verifyUserTicket",
    "ticket",
    "wechatUser",
    "user_name",
    "stranger",
    "EncryptUsername",
)
_SECRET_ITEM = re.compile(r"""(['"](?:{})['"]:\s*)(['"])(.*?)(?<!\\)\2""".format("|".join(_SECRET_KEYS)))
_SECRET_TOKEN = re.compile(r"\b(v[12]_)[0-9A-Za-z]{4,}(@stranger)?")


def mask(text: str) -> str:
    """`text` (a repr or JSON of a request or reply) with friend-request tickets and session data masked."""
    text = _SECRET_ITEM.sub(lambda m: f"{m.group(1)}{m.group(2)}***{m.group(2)}", text)
    return _SECRET_TOKEN.sub(lambda m: f"{m.group(1)}***{m.group(2) or ''}", text)
