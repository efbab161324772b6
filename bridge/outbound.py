"""Replies from the store's stream, events and dead letters from the Celery broker, out to ActiveMQ: each leaves its
outbox only once ActiveMQ has confirmed it.

Each is sent as a persistent JMS TextMessage of JSON: replies to the request's `queueName` with the request's message
id as JMSCorrelationID, events to the ActiveMQ topic named by their routing key, dead letters to the bridge's DLQ.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

from celery import Celery
from kombu import Consumer
from kombu.message import Message
from pydantic import ValidationError

from bridge.link import BrokerUnavailable, Link, Sent
from contactq.settings import Settings
from tasks import plainjson
from tasks.messages import DeadLetter
from tasks.outbox import Outbox, RepliesStream, Taken

log = logging.getLogger(__name__)
_PAUSE_S = 1.0
_RECEIPT_POLL_S = 0.005
# Confirmed replies are settled together once the oldest was sent this long ago (or half the prefetch is in flight):
# one transaction for many, while a trickle of replies costs one read each.
_SETTLE_AFTER_S = 0.05

# The headers a dead letter carries besides the producer's own.
REASON = "contactq-reason"
ORIGINAL_DESTINATION = "contactq-original-destination"
ORIGINAL_MESSAGE_ID = "contactq-original-message-id"


def bounded(text: str, limit: int = 500) -> str:
    """A header value we write: one line, at most `limit` characters (a reason may quote what a producer sent)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def persistent(**headers: str) -> dict[str, str]:
    # `amq-msg-type: text` says TextMessage outright; `persistent` because STOMP sends are not persistent otherwise.
    return {"persistent": "true", "amq-msg-type": "text", **headers}


def send_to_dlq(link: Link, settings: Settings, body: bytes | str, reason: str) -> None:
    """What cannot be sent where it was going, as it is, to the bridge's DLQ with the reason."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "backslashreplace")
    headers = {"persistent": "true", "content-length": str(len(raw)), REASON: bounded(reason)}
    link.send(f"/queue/{settings.bridge_deadletter_queue}", raw, headers)


class ReplyForwarder:
    """Replies, many sent at once with receipts matched as they come: an entry leaves the stream only once ActiveMQ
    has confirmed it. One not confirmed stays this consumer's, and is taken again once none is in flight."""

    def __init__(self, settings: Settings, replies: RepliesStream, link: Link, consumer: str) -> None:
        self.settings = settings
        self.replies = replies
        self.link = link
        self.consumer = consumer
        self.in_flight: deque[tuple[Sent, str]] = deque()  # sent and not yet confirmed, oldest first
        self.again = True  # take what this consumer left unfinished (and orphans of bridges gone) before new ones

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._forward(stop)
            except Exception:
                log.exception("forwarding replies to ActiveMQ stopped; starting again")
                stop.wait(_PAUSE_S)
            finally:
                for sent, _ in self.in_flight:
                    self.link.release(sent)
                self.in_flight.clear()
                self.again = True

    def _forward(self, stop: threading.Event) -> None:
        look_s = self.settings.bridge_orphan_idle_s / 2
        look_at = time.monotonic() + look_s
        while not stop.is_set():
            if time.monotonic() > look_at:
                self.again, look_at = True, time.monotonic() + look_s
                self.replies.forget_idle(self.consumer)
            if self.again and self.in_flight:
                self._settle(wait=True)  # what is in flight is this consumer's too: settled before taking again
                continue
            room = self.settings.bridge_prefetch - len(self.in_flight)
            if room > 0:
                block_ms = int(_SETTLE_AFTER_S * 1000) if self.in_flight else 1000
                taken = self.replies.take(self.consumer, room, block_ms, again=self.again)
                self.again = False
                for entry in taken:
                    if not self._send(entry):
                        break
            full = len(self.in_flight) >= self.settings.bridge_prefetch // 2
            if self.in_flight and (full or self.in_flight[0][0].at + _SETTLE_AFTER_S < time.monotonic()):
                self._settle(wait=len(self.in_flight) >= self.settings.bridge_prefetch)
        self._settle(wait=True)

    def _send(self, entry: Taken) -> bool:
        """False when ActiveMQ is not there: the entry stays this consumer's, taken again after a pause."""
        if entry.reply is None:
            send_to_dlq(self.link, self.settings, entry.raw, "malformed reply in the outbox")
            self.replies.done([entry.id])
            return True
        destination = f"/queue/{entry.reply.queueName}"
        headers = persistent(**{"correlation-id": bounded(entry.reply.correlationId, 200)})
        try:
            sent = self.link.send_async(destination, plainjson.dumps(entry.reply.reply), headers)
        except BrokerUnavailable as e:
            log.warning("holding %s: %s", destination, e.message)
            self.again = True
            time.sleep(_PAUSE_S)
            return False
        except Exception as e:
            # Not one bad reply may hold up every one behind it.
            log.exception("cannot send to %s", destination)
            send_to_dlq(self.link, self.settings, entry.raw, f"cannot send to {destination}: {type(e).__name__}")
            self.replies.done([entry.id])
            return True
        self.in_flight.append((sent, entry.id))
        return True

    def _settle(self, wait: bool) -> None:
        """Finish what ActiveMQ confirmed, in one transaction; what it did not confirm in time is taken again. With
        `wait`, until the oldest is settled."""
        done = []
        while self.in_flight:
            sent, entry_id = self.in_flight[0]
            if not sent.confirmed.is_set() and sent.deadline > time.monotonic():
                if not wait:
                    break
                sent.confirmed.wait(sent.deadline - time.monotonic())
            self.in_flight.popleft()
            self.link.release(sent)
            failure = sent.failure()
            if failure is None:
                done.append(entry_id)
            else:
                log.warning("holding %s: %s", sent.destination, failure.message)
                self.again = True
            wait = False
        self.replies.done(done)


class Forwarder:
    """Events and dead letters, sent many at once with receipts matched as they come: a message leaves the outbox (is
    acknowledged) only once ActiveMQ has confirmed it; one whose receipt does not come in time goes back to the
    outbox, to be sent again."""

    def __init__(self, app: Celery, settings: Settings, outbox: Outbox, link: Link) -> None:
        self.app = app
        self.settings = settings
        self.outbox = outbox
        self.link = link
        # Sent and not yet confirmed, oldest first: at most the consumer's prefetch.
        self.in_flight: deque[tuple[Sent, Message]] = deque()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with (
                    self.app.connection_for_read() as conn,
                    Consumer(
                        conn,
                        queues=[self.outbox.events_queue, self.outbox.deadletter_queue],
                        callbacks=[self._forward],
                        on_decode_error=self._undecodable,
                        accept=[plainjson.NAME, "json"],
                        prefetch_count=self.settings.bridge_prefetch,
                    ),
                ):
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            # Receipts are looked at between deliveries: often while some are awaited.
                            conn.drain_events(timeout=_RECEIPT_POLL_S if self.in_flight else 1)
                        self._settle(wait=len(self.in_flight) >= self.settings.bridge_prefetch)
                    self._settle(wait=True)
            except Exception:
                log.exception("forwarding to ActiveMQ stopped; starting again")
                stop.wait(_PAUSE_S)
            finally:
                # What the closed channel held unacknowledged goes back to the outbox with it.
                for sent, _ in self.in_flight:
                    self.link.release(sent)
                self.in_flight.clear()

    def _settle(self, wait: bool) -> None:
        """Acknowledge what ActiveMQ confirmed, in the order sent; give back what it did not confirm in time. With
        `wait`, until the oldest is settled."""
        while self.in_flight:
            sent, message = self.in_flight[0]
            remaining_s = sent.deadline - time.monotonic()
            if not sent.confirmed.is_set() and remaining_s > 0:
                if not wait:
                    return
                sent.confirmed.wait(remaining_s)  # confirmed, or out of time: settled either way
            self.in_flight.popleft()
            self.link.release(sent)
            failure = sent.failure()
            if failure is None:
                message.ack()
            else:
                log.warning("holding %s: %s", sent.destination, failure.message)
                message.requeue()
            wait = False

    def destination(self, body: Any, message: Message) -> tuple[str, str, dict[str, str]]:
        """Where a message from the outbox goes in ActiveMQ, with what body and headers."""
        exchange, routing_key = message.delivery_info.get("exchange"), message.delivery_info.get("routing_key")
        if exchange == self.outbox.exchange.name:
            return f"/topic/{routing_key}", plainjson.dumps(body), persistent()
        try:
            dead = DeadLetter.model_validate(body)
        except ValidationError:
            dead = DeadLetter(task="", queue="", request=body, status=0, reason="malformed outbox message")
        headers = persistent(**{REASON: bounded(dead.reason), ORIGINAL_DESTINATION: bounded(dead.queue)})
        return f"/queue/{self.settings.bridge_deadletter_queue}", plainjson.dumps(dead.request), headers

    def _forward(self, body: Any, message: Message) -> None:
        destination = "its destination"
        try:
            destination, payload, headers = self.destination(body, message)
            self.in_flight.append((self.link.send_async(destination, payload, headers), message))
        except BrokerUnavailable as e:
            # Back to the outbox, to go out once ActiveMQ is there again.
            log.warning("holding %s: %s", destination, e.message)
            message.requeue()
            time.sleep(_PAUSE_S)
            return
        except Exception as e:
            # Not one bad message may hold up every reply and event behind it: it goes to the DLQ as it is.
            log.exception("cannot send to %s", destination)
            self._dead_letter(message.body or b"", f"cannot send to {destination}: {type(e).__name__}")
            message.ack()

    def _undecodable(self, message: Message, error: Exception) -> None:
        self._dead_letter(message.body or b"", f"undecodable outbox message: {error}")
        message.ack()

    def _dead_letter(self, body: bytes | str, reason: str) -> None:
        send_to_dlq(self.link, self.settings, body, reason)
