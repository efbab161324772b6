"""The project's one exception tree. Each error carries the reply `status` it is answered with.

Libraries' exceptions are converted where the library is called (`raise ... from e`); `RETRYABLE` is the one tuple
of errors that Celery retries with backoff (`autoretry_for`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import redis


class Status(IntEnum):
    """The `status` of every reply: 0 is success, the rest name what went wrong."""

    OK = 0
    INVALID_REQUEST = 400
    REFUSED = 403
    NOT_FOUND = 404
    IN_PROGRESS = 409
    TOO_FREQUENT = 429
    INTERNAL_ERROR = 500
    PROTOCOL_ERROR = 502
    NOT_ONLINE = 503
    TIMEOUT = 504


class ContactqError(Exception):
    status: Status = Status.PROTOCOL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(ContactqError):
    """The deployment's settings name something that is not there."""


class InvalidRequest(ContactqError):
    """The request cannot be parsed or fails the operation's field rules."""

    status = Status.INVALID_REQUEST


class UnsafeXml(InvalidRequest):
    """A friend-request XML with a DTD or entities, too large, or not the `<msg>` WeChat sends."""


class RateLimited(ContactqError):
    """Our own per-account limit: the request is refused before WeChat sees it."""

    status = Status.TOO_FREQUENT


class InProgress(ContactqError):
    """The same friend request is still being sent by another delivery, longer than a WeChat call may take."""

    status = Status.IN_PROGRESS


class CopyRunning(InProgress):
    """Another copy of this very task is sending the request and will answer it: this copy does not answer."""


class StoreUnavailable(ContactqError):
    """Redis (the contact store or the Celery broker) did not answer; worth another try."""

    status = Status.TIMEOUT


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Redis's errors, where Redis is called, as StoreUnavailable naming `what` was not there."""
    try:
        yield
    except redis.RedisError as e:
        raise StoreUnavailable(f"{what} unavailable: {e}") from e


class WeChatError(ContactqError):
    """An answer from the WeChat side. `wechat_code` is WeChat's own code, when it gave one."""

    def __init__(self, message: str, wechat_code: int | None = None) -> None:
        super().__init__(message)
        self.wechat_code = wechat_code


class NotOnline(WeChatError):
    status = Status.NOT_ONLINE


class NotFound(WeChatError):
    status = Status.NOT_FOUND


class TooFrequent(WeChatError):
    status = Status.TOO_FREQUENT


class Refused(WeChatError):
    status = Status.REFUSED


class ProtocolFailure(WeChatError):
    status = Status.PROTOCOL_ERROR


class WeChatTimeout(WeChatError):
    """The protocol server did not answer in time, or failed in a way that a retry may cure."""

    status = Status.TIMEOUT


class Unreachable(WeChatTimeout):
    """The protocol server could not be reached: nothing was sent, so even a friend request may be tried again."""


class OutcomeUnknown(WeChatError):
    """A call that changes something (a friend request, an accept) got no clear answer after it may have reached
    WeChat. Not repeated: a second friend request is what gets an account banned."""

    status = Status.TIMEOUT


RETRYABLE: tuple[type[ContactqError], ...] = (WeChatTimeout, StoreUnavailable)
