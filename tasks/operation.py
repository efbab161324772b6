"""The path every operation takes: validate, find the session, guard, act, then reply and publish.

An operation module declares its request model, its result fields and one function `(Call, request) -> result`,
decorated with `@operation(...)`; everything else (errors to statuses, retries, idempotency, rate limits, replies)
happens here.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from celery import Task
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from pydantic import BaseModel

from contactq.errors import (
    RETRYABLE,
    ContactqError,
    CopyRunning,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    Status,
    StoreUnavailable,
    redis_errors,
)
from contactq.settings import Settings, get_settings
from protocol.client import Session, WeChatClient
from protocol.records import contact_record, member_record
from tasks import metrics
from tasks.app import app, runtime
from tasks.ledger import Answer, Answered
from tasks.messages import Announcement, EventKind, Reply, Request, Result, announcement, parse_request
from tasks.metrics import OTHER_ACCOUNTS
from tasks.queues import task_name
from tasks.runtime import Runtime
from tasks.store import ContactStore

log = logging.getLogger(__name__)

# A Redis that blinked while a task answered or recorded a step it did: tried again, 0.2, 0.4 and 0.8 s apart.
_WRITE_ATTEMPTS = 4
_WRITE_PAUSE_S = 0.2

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=Result)
T = TypeVar("T")

_A_TRY_BEFORE = "a try before"  # a step of `Call.changed`: done by an earlier execution that handed its claim over


@dataclass(frozen=True)
class Call:
    """One operation under way: the account's session and what the operation may use."""

    rt: Runtime
    session: Session
    loginer: int
    task: Task[Any, Any]
    changed: set[str] = field(default_factory=set)  # steps that changed something in WeChat, now or in a try before

    @property
    def client(self) -> WeChatClient:
        return self.rt.client

    @property
    def store(self) -> ContactStore:
        return self.rt.store

    @property
    def settings(self) -> Settings:
        return self.rt.settings

    def announcement(self, kind: EventKind, field: str) -> Announcement:
        return announcement(kind, self.session.uin, self.session.wxid, self.loginer, field)

    def announce(self, kind: EventKind, fields: Iterable[str]) -> None:
        self.rt.outbox.publish_events([self.announcement(kind, f) for f in fields])

    def announce_modified(self, fields: Iterable[str]) -> None:
        """topic.modcontact, and its alias topic.modifycontact that the seed's modifyName and addChatRoomContact
        sections name (unless turned off)."""
        names = list(fields)
        kinds: list[EventKind] = (
            ["modcontact", "modifycontact"] if self.settings.announce_modifycontact else ["modcontact"]
        )
        self.rt.outbox.publish_events([self.announcement(kind, f) for f in names for kind in kinds])

    def refresh(self, usernames: Sequence[str]) -> list[dict[str, Any]]:
        """Fetch contacts (and chatrooms) from WeChat and store them, each over an earlier read only; returns the
        records read, but for those a later read found gone."""
        read = self.store.read_clock()
        raws = self.client.contact_details(self.session.uin, usernames)
        records = [contact_record(raw, self.session.wxid) for raw in raws]
        gone = self.store.put_contacts(self.session.uin, self.session.wxid, records, read)
        return [r for r in records if r["UserName"] not in gone]

    def refresh_members(self, chatroom: str) -> bool:
        """Fetch a stored chatroom's members and store them, over an earlier list only. False when the chatroom is
        gone: WeChat no longer has the account in it (it is then removed and announced on topic.delcontact, as of
        this read), or a later read found it gone. Nothing to announce of its members then."""
        read = self.store.read_clock()
        try:
            members = self.client.chatroom_members(self.session.uin, chatroom)
        except NotFound:
            self.announce("delcontact", self.store.remove(self.session.uin, self.session.wxid, [chatroom], read))
            return False
        records = [member_record(m, chatroom, self.session.wxid) for m in members]
        return self.store.put_members(self.session.uin, self.session.wxid, chatroom, records, read)

    def checkpoint(self, step: str, do: Callable[[], str]) -> str:
        """`do()` once per task: a retry after the step succeeded gets its result instead of doing it again."""
        key = f"contactq:step:{self.task.request.id}:{step}"
        with redis_errors("checkpoints"):
            done = self.store.r.get(key)
        if done is not None:
            self.changed.add(step)
            return str(done)
        value = do()
        self.changed.add(step)

        def record() -> None:
            with redis_errors("checkpoints"):
                self.store.r.set(key, value, ex=self.settings.dedupe_window_s)

        _insisting(record)  # a retry that found no record would do it again
        return value

    def progress(self, **meta: Any) -> None:
        self.task.update_state(state="PROGRESS", meta=meta)


Act = Callable[[Call, M], R]


@dataclass(frozen=True)
class Spec(Generic[M, R]):
    op: str
    model: type[M]
    result: type[R]
    act: Act[M, R]
    once: Callable[[M], tuple[str, ...]] | None


# Every operation by name, so that the bridge validates a request with the model its task will use.
SPECS: dict[str, Spec[Any, Any]] = {}


def operation(
    op: str, model: type[M], result: type[R], *, once: Callable[[M], tuple[str, ...]] | None = None
) -> Callable[[Act[M, R]], Task[Any, Any]]:
    """Register `act` as the Celery task `contactq.{op}`, answering with `result`'s fields.

    `once` names what makes two requests the same friend request; such a request is sent once per dedupe window.
    """

    def register(act: Act[M, R]) -> Task[Any, Any]:
        if not act.__doc__:
            raise TypeError(f"{op}: an operation says what it does in a docstring (Flower and inspect show it)")
        spec = Spec(op, model, result, act, once)
        settings = get_settings()
        SPECS[op] = spec

        def run(self: Task[Any, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
            # Any argument shape is answered: one request is expected, anything else is an invalid one.
            return perform(self, spec, args[0] if len(args) == 1 and not kwargs else {"args": args, **kwargs})

        run.__doc__ = act.__doc__  # what Flower and `celery inspect registered` show
        task: Task[Any, Any] = app.task(
            name=task_name(op),
            bind=True,
            autoretry_for=RETRYABLE,
            max_retries=settings.max_retries,
            retry_backoff=settings.retry_backoff_s,
            retry_backoff_max=settings.retry_backoff_max_s,
            retry_jitter=True,
        )(run)
        return task

    return register


def perform(task: Task[Any, Any], spec: Spec[M, R], raw: Any) -> dict[str, Any]:
    rt = runtime()
    task_id = str(task.request.id)
    answered = rt.ledger.answered(task_id)
    if answered is not None:
        # A copy of a task that has answered (delivered again after its worker died, or sent again by the bridge's
        # recovery): answered once is enough.
        log.info("%s[%s] was answered already; this copy does not run", spec.op, task_id)
        return _earlier(answered)
    keep_result = not (task.request.ignore_result or task.ignore_result)
    execution = f"{task_id}:{uuid.uuid4().hex}"  # this run of the task: two runs of one task id are two executions
    once_key: str | None = None
    acting = False  # the operation began: a friend request may be on its way to WeChat
    result: Result = spec.result()
    dead = False  # kept for replay: invalid, out of retries, out of time, or a defect of ours
    settled = False  # the outcome stands for copies within the dedupe window (done, or maybe done)
    account = OTHER_ACCOUNTS  # the metrics' label: the uin once it is known to be one this worker hosts
    call: Call | None = None
    try:
        req = parse_request(spec.model, raw)
        uin: str = getattr(req, "uin")  # noqa: B009 - every model carries the account's uin
        session = rt.client.session(uin)
        account = session.uin
        call = Call(rt, session, req.loginer if isinstance(req, Request) else session.loginer, task)
        if spec.once is not None:
            once_key = rt.once.key(spec.op, uin, spec.once(req))
            claimed = rt.once.claim(once_key, execution, wait_s=rt.settings.wechat_timeout_s)
            if isinstance(claimed, dict):
                earlier_result = spec.result.model_validate(claimed["result"])
                earlier_reply = Reply.to(raw, Status(claimed["status"]), claimed["message"], earlier_result)
                return _given(_answer(rt, spec.op, task_id, account, earlier_reply, keep_result))
            if claimed.heir:
                call.changed.add(_A_TRY_BEFORE)  # a failure before this try reaches its checkpoint keeps the claim
        limit = rt.settings.rate_limits.get(spec.op)
        if limit is not None:
            rt.limiter.acquire(uin, spec.op, limit, task_id)
        with rt.once.held(once_key, execution) if once_key is not None else contextlib.nullcontext():
            acting = True
            result = spec.act(call, req)
        status, message, settled = Status.OK, "", True
    except CopyRunning:
        # A live copy of this task is sending it and answers. This copy looks again once a lease has passed, rather
        # than end: should that copy's worker die, its message may be gone (restored, and taken as this one).
        log.info("%s[%s] is being run by another copy; looking again in %s s", spec.op, task_id, rt.once.lease_s)
        raise task.retry(countdown=rt.once.lease_s, max_retries=None) from None
    except RETRYABLE as e:
        if (task.request.retries or 0) < (task.max_retries or 0):
            if once_key is not None and call is not None and call.changed:
                # A copy must not do it again while the retry waits: not left to the lease, should Redis blink.
                _insisting(lambda: rt.once.hand_over(once_key, execution))
            elif once_key is not None:
                rt.once.release(once_key, execution)  # the retry is a new execution, and claims again
            raise  # autoretry_for: again after a backoff with jitter
        status, message, dead = e.status, f"{e.message} (gave up after {task.request.retries} retries)", True
    except InvalidRequest as e:
        status, message, dead = e.status, e.message, True
    except OutcomeUnknown as e:
        # It may have reached WeChat: not sent again, by a retry or by a copy within the window; a person looks.
        status, message, dead, settled = e.status, e.message, True, True
    except ContactqError as e:
        status, message = e.status, e.message
    except SoftTimeLimitExceeded:
        # Once it acted, maybe in the middle of a call to WeChat: a friend request's copies are not sent again, as for
        # OutcomeUnknown.
        status, message, dead, settled = Status.TIMEOUT, f"{spec.op} ran out of time", True, acting
    except Exception as e:
        # A defect of ours: the caller is still answered and the request kept for replay.
        log.exception("%s[%s] failed", spec.op, task_id)
        status, message, dead = Status.INTERNAL_ERROR, f"internal error: {type(e).__name__}", True
    once_outcome = None
    if call is not None and call.changed:
        settled = True  # whatever failed after it, a copy within the window must not do it again
    # Settled only once the claim was held (it acted, or it inherited the claim); a release takes only its own claim.
    if once_key is not None:
        if settled:
            once_outcome = (once_key, {"status": int(status), "message": message, "result": result.model_dump()})
        else:
            rt.once.release(once_key, execution)
    if dead:
        _dead_letter(rt, task, raw, status, message)
    reply = Reply.to(raw, status, message, result)
    return _given(
        _answer(rt, spec.op, task_id, account, reply, keep_result, dead_lettered=dead, once_outcome=once_outcome)
    )


def answer_killed(task_name: str, task_id: str, queue: str, args: Sequence[Any], reason: str) -> None:
    """Answer and dead-letter a request whose task was killed at its hard time limit: none of its code runs after."""
    rt = runtime()
    if rt.ledger.answered(task_id) is not None:
        return  # it finished in time after all
    op = task_name.removeprefix("contactq.")
    raw = args[0] if len(args) == 1 else {"args": list(args)}
    uin = raw.get("uin") if isinstance(raw, dict) else None
    account = uin if isinstance(uin, str) and rt.registry.lookup(uin) is not None else OTHER_ACCOUNTS
    rt.outbox.dead_letter(task_name, queue, raw, int(Status.TIMEOUT), reason)
    # Celery stores the killed task's failure itself.
    reply = failure_reply(op, raw, Status.TIMEOUT, reason)
    _answer(
        rt,
        op,
        task_id,
        account,
        reply,
        keep_result=False,
        dead_lettered=True,
        once_outcome=_killed(rt, op, task_id, raw, reply),
    )


def _killed(rt: Runtime, op: str, task_id: str, raw: Any, reply: Reply) -> tuple[str, dict[str, Any]] | None:
    """The outcome a friend request killed at its hard time limit keeps, maybe killed in the middle of sending: its
    copies are not sent again within the window, as for OutcomeUnknown."""
    spec = SPECS.get(op)
    if spec is None or spec.once is None:
        return None
    try:
        req = parse_request(spec.model, raw)
    except InvalidRequest:
        return None
    key = rt.once.key(op, getattr(req, "uin"), spec.once(req))  # noqa: B009 - every model carries the account's uin
    if not rt.once.holds(key, task_id):
        return None  # killed before it held the claim, or while it waited for another's: that one's outcome stands
    return key, {"status": int(reply.status), "message": reply.message, "result": reply.result.model_dump()}


def failure_reply(op: str | None, raw: Any, status: Status, message: str) -> Reply:
    """The reply to a request that no task answers (refused, or lost): the operation's result fields empty."""
    result = SPECS[op].result() if op in SPECS else Result()
    return Reply.to(raw, status, message, result)


def _answer(
    rt: Runtime,
    op: str,
    task_id: str,
    account: str,
    reply: Reply,
    keep_result: bool,
    dead_lettered: bool = False,
    once_outcome: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any] | Answered:
    """Answer the request: the reply document, or the earlier answer when another copy of the task answered first (a
    copy delivered again while this one ran, or the hard time limit's answer in the instant before it struck)."""
    document = reply.document()
    answer = Answer(
        reply=reply.outbound(task_id),
        result=document if keep_result else None,
        counts=[
            metrics.field("requests", op, account, str(int(reply.status))),
            *([metrics.field("dead_lettered", task_name(op))] if dead_lettered else []),
        ],
        outcome=once_outcome,
    )
    # Tried again in place, since a task retried for it would act again. An attempt whose answer went through with its
    # response lost finds its own mark the next time. Should Redis stay away, the task's retry answers again; past its
    # retries, the bridge's recovery sends it again.
    earlier = _insisting(lambda: rt.ledger.answer(task_id, answer))
    if earlier is not None:
        log.warning("%s[%s] was answered by another copy meanwhile; this answer is dropped", op, task_id)
        return earlier
    log.info("answered %s: status %s %s", task_id, int(reply.status), reply.message)
    return document


def _insisting(write: Callable[[], T]) -> T:
    """A write to Redis that a task's retry cannot stand in for, tried again 0.2, 0.4 and 0.8 s apart."""
    for attempt in range(_WRITE_ATTEMPTS - 1):
        try:
            return write()
        except StoreUnavailable:
            time.sleep(_WRITE_PAUSE_S * 2**attempt)
    return write()


def _given(answered: dict[str, Any] | Answered) -> dict[str, Any]:
    """What the task returns once it has answered, or found the earlier answer."""
    return _earlier(answered) if isinstance(answered, Answered) else answered


def _earlier(answered: Answered) -> dict[str, Any]:
    """What a copy of an answered task returns: the first result stays the result. The first's worker may have died
    before Celery stored it, so the copy gives it again; a task whose caller waits for no result stores none."""
    if answered.result is not None:
        return answered.result
    raise Ignore()


def _dead_letter(rt: Runtime, task: Task[Any, Any], raw: Any, status: Status, reason: str) -> None:
    queue = str((task.request.delivery_info or {}).get("routing_key", ""))
    rt.outbox.dead_letter(task.name, queue, raw, int(status), reason)
