"""`contactq doctor`: each part the contact module needs, checked, with what to do when it is not right."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import redis
from kombu.utils.url import maybe_sanitize_url

from bridge.service import HEARTBEAT_KEY
from contactq.errors import ContactqError
from contactq.settings import Settings, get_settings
from tasks import app
from tasks.queues import queue_name

Check = tuple[str, bool, str]


def safe(url: str) -> str:
    """A URL as it may be printed: its password masked."""
    return str(maybe_sanitize_url(url))


def _contact_store(settings: Settings) -> Check:
    try:
        redis.Redis.from_url(settings.store_url, socket_timeout=3).ping()
    except redis.RedisError as e:
        return "contact store", False, f"Redis at {safe(settings.store_url)} does not answer ({e}); start Redis"
    return "contact store", True, safe(settings.store_url)


def _celery_broker(settings: Settings) -> Check:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as e:
        return "Celery broker", False, f"{safe(settings.broker_url)} does not answer ({e})"
    return "Celery broker", True, safe(settings.broker_url)


def _activemq(settings: Settings) -> Check:
    import stomp

    conn = stomp.Connection12([(settings.activemq_host, settings.activemq_stomp_port)], reconnect_attempts_max=1)
    where = f"STOMP {settings.activemq_host}:{settings.activemq_stomp_port}"
    try:
        conn.connect(settings.activemq_user, settings.activemq_password, wait=True)
        conn.disconnect()
    except Exception as e:
        return "ActiveMQ", False, f"{where} refuses ({type(e).__name__}); start it: scripts/activemq.sh up"
    return "ActiveMQ", True, where


def _workers(settings: Settings) -> Iterator[Check]:
    consumed: dict[str, list[str]] = {}
    for worker, queues in (app.control.inspect(timeout=2).active_queues() or {}).items():
        for queue in queues:
            consumed.setdefault(queue["name"], []).append(worker)
    for server, children in settings.servers.items():
        for child in children:
            workers = consumed.get(queue_name("searchContact", server, child))
            name = f"worker for server {server} child {child}"
            if workers:
                yield name, True, ", ".join(sorted(workers))
            else:
                yield (
                    name,
                    False,
                    (
                        f"none consumes its queues; start one: CONTACTQ_SERVER_ID={server} "
                        f"CONTACTQ_CHILD_IDS={child} contactq worker"
                    ),
                )


def _bridges(settings: Settings) -> Iterator[Check]:
    store = redis.Redis.from_url(settings.store_url, decode_responses=True, socket_timeout=3)
    beats = {key.removeprefix(HEARTBEAT_KEY): store.get(key) for key in store.scan_iter(match=f"{HEARTBEAT_KEY}*")}
    if not beats:
        yield "bridge", False, "none has reported in the last 30 s; start one: contactq bridge"
    for name, beat in sorted(beats.items()):
        state = json.loads(beat or "{}")
        down = [link for link in ("requests", "replies") if not state.get(link)]
        if down:
            yield f"bridge {name}", False, f"not connected to ActiveMQ ({', '.join(down)}); is ActiveMQ up?"
        else:
            yield f"bridge {name}", True, f"connected, carrying servers {state.get('servers')}"


def _gewe(settings: Settings) -> Iterator[Check]:
    """With the Gewechat backend: this server's accounts logged in there, and the callbacks endpoint up."""
    from protocol.gewe import from_settings

    client = from_settings(settings)
    sessions = [s for child in settings.child_ids for s in client.sessions(child)]
    if not sessions:
        yield "Gewechat accounts", False, f"none configured for server {settings.server_id}: set CONTACTQ_GEWE_ACCOUNTS"
    for session in sessions:
        name = f"Gewechat uin {session.uin}"
        try:
            online = client.online(session.uin)
        except ContactqError as e:
            yield name, False, f"{settings.gewe_base_url}: {e.message}"
            continue
        yield name, online, "logged in" if online else "not logged in on the server: log it in there"
    url = f"http://{settings.callbacks_address}:{settings.callbacks_port}/health"
    try:
        httpx.get(url, timeout=3).raise_for_status()
    except httpx.HTTPError as e:
        yield "callbacks endpoint", False, f"{url} does not answer ({e}); start it: contactq callbacks"
    else:
        yield "callbacks endpoint", True, url


def checks(settings: Settings | None = None) -> Iterator[Check]:
    settings = settings or get_settings()
    single: list[Callable[[Settings], Check]] = [_contact_store, _celery_broker, _activemq]
    for check in single:
        yield check(settings)
    yield from _workers(settings)
    yield from _bridges(settings)
    if settings.protocol == "gewe":
        yield from _gewe(settings)
