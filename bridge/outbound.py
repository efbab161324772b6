"""Replies, events and dead letters from the Celery broker out to ActiveMQ, acknowledged only once ActiveMQ has them.

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
from tasks.messages import DeadLetter, OutboxReply
from tasks.outbox import Outbox

log = logging.getLogger(__name__)
_PAUSE_S = 1.0
_RECEIPT_POLL_S = 0.005

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


class Forwarder:
    """Sends many at once and matches receipts as they come: a message leaves the outbox (is acknowledged) only once
    ActiveMQ has confirmed it; one whose receipt does not come in time goes back to the outbox, to be sent again."""

    def __init__(self, app: Celery, settings: Settings, outbox: Outbox, link: Link) -> None:
        self.app = app
        self.settings = settings
        self.outbox = outbox
        self.link = link
        self.forwarded = 0
        # Sent and not yet confirmed, oldest first: at most the consumer's prefetch.
        self.in_flight: deque[tuple[Sent, Message]] = deque()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with (
                    self.app.connection_for_read() as conn,
                    Consumer(
                        conn,
                        queues=[self.outbox.replies_queue, self.outbox.events_queue, self.outbox.deadletter_queue],
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
                self.forwarded += 1
            else:
                log.warning("holding %s: %s", sent.destination, failure.message)
                message.requeue()
            wait = False

    def destination(self, body: Any, message: Message) -> tuple[str, str, dict[str, str]]:
        """Where a message from the outbox goes in ActiveMQ, with what body and headers."""
        exchange, routing_key = message.delivery_info.get("exchange"), message.delivery_info.get("routing_key")
        if exchange == self.outbox.exchange.name:
            return f"/topic/{routing_key}", plainjson.dumps(body), persistent()
        if routing_key == self.outbox.replies_queue.name:  # published straight to the queue (the default exchange)
            try:
                reply = OutboxReply.model_validate(body)
            except ValidationError:
                pass  # not a reply we wrote: to the DLQ as it is, below
            else:
                headers = persistent(**{"correlation-id": bounded(reply.correlationId, 200)})
                return f"/queue/{reply.queueName}", plainjson.dumps(reply.reply), headers
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
        raw = body if isinstance(body, bytes) else body.encode("utf-8", "backslashreplace")
        headers = {"persistent": "true", "content-length": str(len(raw)), REASON: bounded(reason)}
        self.link.send(f"/queue/{self.settings.bridge_deadletter_queue}", raw, headers)
