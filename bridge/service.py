"""The bridge as a process: two STOMP links (requests in; replies, events and dead letters out) and the forwarder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

import redis
from celery import Celery

from bridge.decode import message_kind
from bridge.inbound import INFRASTRUCTURE, Inbound, Refused
from bridge.link import BrokerUnavailable, Link
from bridge.outbound import ORIGINAL_DESTINATION, ORIGINAL_MESSAGE_ID, REASON, Forwarder, ReplyForwarder, bounded
from bridge.recovery import Recovery
from contactq.errors import StoreUnavailable
from contactq.settings import Settings
from tasks.ledger import Answer
from tasks.metrics import Counters
from tasks.outbox import Outbox
from tasks.queues import activemq_request_queues
from tasks.store import AccountRegistry

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "contactq:bridge:"
HEARTBEAT_S = 30
_LOOK_S = 0.2

# Headers ActiveMQ sets on a delivered MESSAGE; every other one is the producer's and travels on to the DLQ.
_DELIVERY_HEADERS = {
    "ack",
    "message-id",
    "destination",
    "subscription",
    "redelivered",
    "timestamp",
    "expires",
    "priority",
    "persistent",
    "content-length",
}


def resend_headers(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """Headers that send a delivered message on as the same kind of JMS message, with the producer's own headers."""
    kept = {k: v for k, v in headers.items() if k not in _DELIVERY_HEADERS and not k.startswith("contactq-")}
    kept.pop("transformation", None)
    kind = message_kind(headers, body)
    if kind == "map":
        kept["transformation"] = "jms-map-json"
    elif kind == "bytes":
        kept["content-length"] = str(len(body))
    else:
        kept["amq-msg-type"] = "text"
    return kept | {"persistent": "true"}


class Bridge:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.settings = settings
        # Flower shows a task's queue from its task-sent event, which costs the bridge a publish for every request:
        # sent only while task events are kept on.
        app.conf.task_send_sent_event = settings.task_events
        # What the bridge needs, and not a WeChat client: the bridge never talks to WeChat.
        self.store = redis.Redis.from_url(settings.store_url, decode_responses=True)
        self.counters = Counters(self.store)
        self.outbox = Outbox(app, settings, self.store)
        self.inbound = Inbound(app, settings, AccountRegistry(self.store), self.store)
        # Set when the bridge gave up the connection: the frames still on their way are left for the redelivery.
        self.draining = threading.Event()
        self.requests = Link(
            settings, "requests", self.counters, on_connected=self._subscribe, on_message=self._on_request
        )
        self.out = Link(settings, "replies", self.counters)
        self.forwarder = Forwarder(app, settings, self.outbox, self.out)
        self.reply_forwarder = ReplyForwarder(settings, self.outbox.replies, self.out, self._name)
        self.recovery = Recovery(app, settings, self.inbound.ledger, self.outbox, self.counters)
        self.stop = threading.Event()

    def run(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop.set())
        threads = [
            threading.Thread(target=t, args=(self.stop,), name=n, daemon=True)
            for n, t in (
                ("requests", self.requests.run),
                ("replies", self.out.run),
                ("forwarder", self.forwarder.run),
                ("reply-forwarder", self.reply_forwarder.run),
                ("recovery", self.recovery.run),
            )
        ]
        for thread in threads:
            thread.start()
        log.info("bridge for servers %s ready", self.settings.servers)
        reported: dict[str, object] = {}
        reported_at = 0.0
        while not self.stop.wait(_LOOK_S):
            # At once when a link connects or drops (what `make up` and the tests wait on), else every 10 s.
            state = self._state()
            if state != reported or time.monotonic() - reported_at >= HEARTBEAT_S / 3:
                self._heartbeat(state)
                reported, reported_at = state, time.monotonic()
        for thread in threads:
            thread.join(timeout=15)
        with contextlib.suppress(redis.RedisError):
            self.store.delete(self._heartbeat_key)  # gone: doctor and `make up` wait for no stale report

    @property
    def _name(self) -> str:
        """This bridge among others: its heartbeat's key, and its consumer of the replies stream."""
        return f"{socket.gethostname()}:{os.getpid()}"

    @property
    def _heartbeat_key(self) -> str:
        return f"{HEARTBEAT_KEY}{self._name}"

    def _state(self) -> dict[str, object]:
        return {
            "requests": self.requests.connected.is_set(),
            "replies": self.out.connected.is_set(),
            # When the requests link last connected: a reconnection is told from a state that never changed.
            "connected_at": self.requests.connected_at,
            "servers": {str(k): v for k, v in self.settings.servers.items()},
        }

    def _heartbeat(self, state: dict[str, object]) -> None:
        """What `contactq doctor` reads: this bridge is alive, and whether its links are connected."""
        try:
            self.store.set(self._heartbeat_key, json.dumps(state), ex=HEARTBEAT_S)
        except redis.RedisError as e:
            log.warning("heartbeat not written: %s", e)

    def _subscribe(self, link: Link) -> None:
        self.draining.clear()
        headers = {"transformation": "jms-map-json", "activemq.prefetchSize": str(self.settings.bridge_prefetch)}
        for server, children in self.settings.servers.items():
            for name in activemq_request_queues(server, children):
                link.subscribe(f"/queue/{name}", headers)

    def _on_request(self, frame: Any) -> None:
        if self.draining.is_set():
            return
        headers: dict[str, str] = dict(frame.headers)
        body: bytes = frame.body if isinstance(frame.body, bytes) else str(frame.body).encode()
        try:
            verdict = self.inbound.handle(headers.get("destination", ""), headers, body)
            if isinstance(verdict, Refused):
                self.refuse(headers, body, verdict)
        except (*INFRASTRUCTURE, BrokerUnavailable) as e:
            # Redis, the Celery broker or ActiveMQ is not there: leave the message unacknowledged; it comes again
            # after a reconnect, as do the frames already on their way.
            log.warning("could not pass on message %s (%s); reconnecting", headers.get("message-id"), e)
            self.draining.set()
            self.requests.drop()
            return
        self.requests.ack(frame)

    def refuse(self, headers: dict[str, str], body: bytes, refused: Refused) -> None:
        """The message as it came, to the DLQ with the reason; and an error reply where a reply queue is known.

        The answer (with its reply, if any) is written once, after the dead letter: a message delivered again after
        it was answered (its link dropped before the ACK) was dead-lettered too, and is only acknowledged; so is one
        whose task was sent on an earlier delivery (refused now because its account went offline meanwhile): that
        task answers. One that comes again before its answer was written is dead-lettered again: a dead letter is
        never lost for want of a Redis write."""
        message_id = headers.get("message-id") or f"unnamed:{uuid.uuid4()}"  # ActiveMQ names every message
        if self.inbound.ledger.taken(message_id):
            return
        out_headers = resend_headers(headers, body) | {
            REASON: bounded(refused.reason),
            ORIGINAL_DESTINATION: headers.get("destination", "").removeprefix("/queue/"),
            ORIGINAL_MESSAGE_ID: headers.get("message-id", ""),
        }
        self.out.send(f"/queue/{self.settings.bridge_deadletter_queue}", body, out_headers)
        self.counters.add_or_log("dead_lettered", "bridge")  # not a reason to take the message again
        reply = refused.reply()
        outbound = None if reply is None else reply.outbound(message_id)
        try:
            self.inbound.ledger.answer(message_id, Answer(reply=outbound))
        except StoreUnavailable as e:
            if outbound is not None:
                raise  # the reply is owed: the message stays unacknowledged until it is written
            # Without a reply the mark only spares a copy a second dead letter: not worth holding the message, which
            # would be dead-lettered again at every redelivery while Redis refuses writes.
            log.warning("refused message %s acknowledged without its answered mark: %s", message_id, e.message)
