"""The message shapes of the contact module: requests, replies, topic events, what the outbox carries to the bridge,
and secrets masked for display."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from contactq.errors import InvalidRequest, Status
from tasks.queues import reply_queue_problem

EventKind = Literal["getcontact", "modcontact", "delcontact", "chatroommember", "modchatroommember", "modifycontact"]
MQ_TYPES: dict[str, int] = {
    "getcontact": 7,
    "modcontact": 3,
    "delcontact": 4,
    "chatroommember": 5,
    "modchatroommember": 5,
    # The seed's modifyName and addChatRoomContact sections name topic.modcontact so.
    "modifycontact": 3,
}


def _safe_reply_queue(name: str) -> str:
    problem = reply_queue_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


# Where a reply may go: a plain queue name that is none of ours (tasks.queues.reply_queue_problem).
ReplyQueue = Annotated[str, AfterValidator(_safe_reply_queue)]


class Request(BaseModel):
    """Fields every request carries. Unknown fields are kept (and echoed by the reply, from the raw request)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    # The platform account: `adminUserId` in some of the seed's requests, `loginer` in others.
    loginer: int = Field(validation_alias=AliasChoices("loginer", "adminUserId"))
    uin: str = Field(min_length=1)
    queueName: ReplyQueue | None = None


M = TypeVar("M", bound=BaseModel)

# A request of the seed is flat. Deeper than this a request is refused, and the field is not echoed: pydantic refuses
# to serialize beyond 254 levels, and a reply or a dead letter that cannot be written would answer nothing.
MAX_DEPTH = 32


def nested_beyond(value: Any, levels: int) -> bool:
    """Whether `value` holds objects or arrays nested more than `levels` deep (a scalar: 0, `[1]`: 1). Iterative: the
    value itself may be nested beyond what recursion allows."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list | tuple) else None
        if children is None:
            continue
        if depth >= levels:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def too_deep(raw: Mapping[str, Any]) -> list[str]:
    """The request's fields nested beyond MAX_DEPTH (the request itself is the first level)."""
    return [k for k, v in raw.items() if nested_beyond(v, MAX_DEPTH - 1)]


def echoable(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The request's fields a reply echoes: all but one nested beyond MAX_DEPTH."""
    deep = too_deep(raw)
    return {k: v for k, v in raw.items() if k not in deep}


def _not_a_wxid(value: str) -> str:
    if value.startswith("wxid_"):
        raise ValueError("a wxid_ id cannot be searched or added: use a WeChat ID, QQ number or phone number")
    return value


# What searchContact and addContact take: a WeChat ID, QQ or phone number, never a wxid_ id (the seed's rule).
SearchableId = Annotated[str, Field(min_length=1), AfterValidator(_not_a_wxid)]

# `type`: the scene WeChat put in the friend-request XML. The nine of protocol.client.Scene are the common ones; WeChat
# sends others (6, 17, ...), and they pass through.
SceneCode = Annotated[int, Field(ge=0, le=0xFFFFFFFF)]


def parse_request(model: type[M], raw: Any) -> M:
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"a request is a JSON object, not {type(raw).__name__}")
    deep = sorted(too_deep(raw))
    if deep:
        raise InvalidRequest(f"invalid request: {', '.join(deep)}: nested deeper than {MAX_DEPTH} levels")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}" for err in e.errors())
        raise InvalidRequest(f"invalid request: {problems}") from e


class Result(BaseModel):
    """An operation's own reply fields. Each has a default, so that a failed reply carries them too, empty: a Java
    consumer that reads a field before the status never gets null."""


class Reply(BaseModel):
    """The seed's reply: the request's own fields unchanged, then `status`, `message` and the operation's fields."""

    request: dict[str, Any]
    status: Status
    message: str = ""
    result: SerializeAsAny[Result] = Field(default_factory=Result)

    @classmethod
    def to(cls, raw: Any, status: Status, message: str = "", result: Result | None = None) -> Reply:
        """The reply to `raw`, whatever it is: a request that is not an object echoes nothing."""
        echo = echoable(raw) if isinstance(raw, Mapping) else {}
        return cls(request=echo, status=status, message=message, result=result or Result())

    @property
    def queue_name(self) -> str | None:
        """Where the request asked to be answered."""
        queue = self.request.get("queueName")
        return queue if isinstance(queue, str) and reply_queue_problem(queue) is None else None

    def document(self) -> dict[str, Any]:
        """The JSON object sent to `queueName` and kept as the task's result."""
        return {**self.request, "status": int(self.status), "message": self.message, **self.result.model_dump()}

    def outbound(self, correlation_id: str) -> OutboxReply | None:
        """The reply as the bridges send it; None when the request named no queue to be answered on."""
        queue = self.queue_name
        if queue is None:
            return None
        return OutboxReply(queueName=queue, correlationId=correlation_id, reply=self.document())


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


class OutboxReply(BaseModel):
    """A reply in the outbox, for the bridge to send to `queueName` with `correlationId` as JMSCorrelationID."""

    queueName: ReplyQueue
    correlationId: str
    reply: dict[str, Any]


class DeadLetter(BaseModel):
    """A request that could not be done; replay it by sending `request` to `task` on `queue` again."""

    task: str
    queue: str
    request: Any
    status: int
    reason: str


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
