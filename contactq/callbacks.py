"""`contactq callbacks`: the HTTP endpoint a Gewechat server posts its callbacks to.

`POST /callbacks/{secret}` answers at once: the callback is decoded (protocol.gewe_callbacks), and the change it
means is appended to its account's push stream, where a worker's push listener sends it to the pushedChange task.
A callback seen before is answered 200 and appended no more. Every callback is counted in
`contactq_callbacks_total{type, outcome}`:

| outcome         | HTTP | when                                                             |
|-----------------|------|------------------------------------------------------------------|
| accepted        | 200  | appended for a task                                              |
| duplicate       | 200  | delivered before                                                 |
| ignored         | 200  | nothing for the contact module (a chat message, a test message)  |
| offline         | 200  | the account went offline: marked, checked again before its next call |
| unauthorized    | 401  | the secret in the path is wrong                                   |
| too_large       | 413  | the body is larger than `callbacks_max_body_bytes`               |
| malformed       | 400  | not JSON, not a callback, a friend request with unsafe XML        |
| unknown_type    | 422  | a TypeName contactq does not know                                 |
| unknown_account | 404  | an Appid not in `gewe_accounts`                                   |
| unavailable     | 503  | Redis did not answer: the server posts it again                   |
"""

from __future__ import annotations

import hmac
import logging

import redis
import uvicorn
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contactq.errors import ConfigurationError, InvalidRequest, StoreUnavailable, redis_errors
from contactq.settings import GeweAccount, Settings
from protocol.gewe import OFFLINE_KEY, PUSH_PREFIX
from protocol.gewe_callbacks import CallbackRefused, Decoded, decode
from protocol.pushstream import PushStreams, entry
from tasks.metrics import Counters

log = logging.getLogger(__name__)

# Messages are the same message by their NewMsgId for a week; other callbacks by their body for ten minutes, so
# that the same change made again later (renamed back, befriended again) is not taken for a copy.
MESSAGE_WINDOW_S = 7 * 24 * 3600
BODY_WINDOW_S = 600


class TooLarge(Exception):
    pass


def _answer(status: int, outcome: str, message: str = "") -> JSONResponse:
    return JSONResponse({"ret": 200 if status == 200 else status, "msg": message or outcome}, status_code=status)


class CallbackSink:
    """Where decoded callbacks go: the push streams of the accounts' servers, and the offline marks."""

    def __init__(self, store: redis.Redis, accounts: list[GeweAccount]) -> None:
        self.r = store
        self.accounts = {a.app_id: a for a in accounts}
        self.streams = {a.server_id: PushStreams(store, PUSH_PREFIX, a.server_id) for a in accounts}

    def take(self, callback: Decoded, account: GeweAccount) -> str:
        """The outcome of one callback."""
        if callback.online is not None:
            with redis_errors("Gewechat account state"):
                if callback.online:
                    self.r.srem(OFFLINE_KEY, account.app_id)
                else:
                    self.r.sadd(OFFLINE_KEY, account.app_id)
        if callback.change is None:
            return "ignored" if callback.online is None else "offline" if not callback.online else "accepted"
        change = callback.change
        window_s = MESSAGE_WINDOW_S if callback.dedupe_id.startswith("msg:") else BODY_WINDOW_S
        appended = self.streams[account.server_id].append_once(
            account.child_id,
            f"contactq:callback:{callback.dedupe_id}",
            window_s,
            entry(account.uin, change.kind, change.username, change.content),
        )
        return "accepted" if appended else "duplicate"


def create_app(settings: Settings, store: redis.Redis) -> Starlette:
    secret = settings.callbacks_secret.get_secret_value()
    if not secret:
        raise ConfigurationError("CONTACTQ_CALLBACKS_SECRET is empty: the callbacks endpoint would be open to anyone")
    sink = CallbackSink(store, settings.gewe_accounts)
    counters = Counters(store)
    max_bytes = settings.callbacks_max_body_bytes

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise TooLarge
        return bytes(body)

    def take(callback: Decoded) -> tuple[int, str, str]:
        account = sink.accounts.get(callback.app_id)
        if account is None:
            return 404, "unknown_account", f"unknown Appid {callback.app_id!r}"
        try:
            return 200, sink.take(callback, account), ""
        except StoreUnavailable as e:
            return 503, "unavailable", e.message

    async def receive(request: Request) -> JSONResponse:
        if not hmac.compare_digest(request.path_params["secret"].encode(), secret.encode()):
            await run_in_threadpool(counters.add_or_log, "callbacks", "unknown", "unauthorized")
            return _answer(401, "unauthorized", "wrong callback secret")
        try:
            body = await read_body(request)
        except TooLarge:
            await run_in_threadpool(counters.add_or_log, "callbacks", "unknown", "too_large")
            return _answer(413, "too_large", f"a callback is at most {max_bytes} bytes")
        try:
            callback = decode(body)
        except CallbackRefused as e:
            await run_in_threadpool(counters.add_or_log, "callbacks", "unknown", e.reason)
            return _answer(422 if e.reason == "unknown_type" else 400, e.reason, e.message)
        except InvalidRequest as e:  # the friend request's XML
            await run_in_threadpool(counters.add_or_log, "callbacks", "AddMsg", "malformed")
            return _answer(400, "malformed", e.message)
        if callback is None:
            await run_in_threadpool(counters.add_or_log, "callbacks", "test", "ignored")
            return _answer(200, "ignored")
        status, outcome, message = await run_in_threadpool(take, callback)
        await run_in_threadpool(counters.add_or_log, "callbacks", callback.type_name, outcome)
        return _answer(status, outcome, message)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/callbacks/{secret}", receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def serve(settings: Settings) -> None:
    # Fail fast when Redis is away: the server posts the callback again, and waits on nobody meanwhile.
    store = redis.Redis.from_url(
        settings.store_url,
        decode_responses=True,
        socket_timeout=2,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 1),
    )
    app = create_app(settings, store)
    uvicorn.run(app, host=settings.callbacks_address, port=settings.callbacks_port, log_level="warning")
