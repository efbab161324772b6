"""One STOMP connection to ActiveMQ: heart-beats, sends confirmed by receipts, and reconnection with backoff."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stomp
from stomp.exception import StompException

from contactq.errors import ContactqError
from contactq.settings import Settings
from tasks.metrics import Counters

log = logging.getLogger(__name__)


class BrokerUnavailable(ContactqError):
    """ActiveMQ is not connected, or did not confirm a send in time."""


@dataclass
class Sent:
    """A send waiting for its receipt."""

    destination: str
    receipt: str
    at: float  # time.monotonic() when sent
    deadline: float  # time.monotonic() after which the send counts as lost
    confirmed: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def failure(self) -> BrokerUnavailable | None:
        """Once confirmed or past its deadline: None when ActiveMQ has the message, else why not."""
        if self.errors:
            return BrokerUnavailable(f"ActiveMQ refused {self.destination}: {self.errors[0]}")
        if not self.confirmed.is_set():
            return BrokerUnavailable(f"no receipt from ActiveMQ for {self.destination}")
        return None


class Link(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        name: str,
        counters: Counters,
        on_connected: Callable[[Link], None] | None = None,
        on_message: Callable[[stomp.utils.Frame], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.counters = counters
        self._on_connected = on_connected
        self._on_message = on_message
        beat = settings.bridge_heartbeat_ms
        # No automatic content-length: with it, ActiveMQ turns a SEND into a BytesMessage instead of a TextMessage.
        self.conn = stomp.Connection12(
            [(settings.activemq_host, settings.activemq_stomp_port)],
            heartbeats=(beat, beat),
            auto_content_length=False,
            auto_decode=False,
            reconnect_attempts_max=1,
        )
        self.conn.set_listener(name, self)
        self.connected = threading.Event()
        self.connected_at = 0.0  # epoch seconds of the last connection
        self._receipts: dict[str, Sent] = {}
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        """Keep connected until `stop`; after a loss, reconnect with exponential backoff and jitter."""
        delay_s = 0.5
        while not stop.is_set():
            if self.connected.is_set() and self.conn.is_connected():
                stop.wait(0.5)
                continue
            self.connected.clear()
            try:
                self.conn.connect(self.settings.activemq_user, self.settings.activemq_password, wait=True)
                if self._on_connected is not None:
                    self._on_connected(self)
                if self.conn.is_connected():  # not lost again while subscribing
                    self.connected_at = time.time()
                    self.connected.set()
                    log.info("%s: connected to ActiveMQ", self.name)
                    delay_s = 0.5
                continue
            except (StompException, OSError) as e:
                reason = str(e) or type(e).__name__
            except Exception as e:
                # Whatever else fails, the link tries again: a thread ended here would leave the bridge deaf.
                log.exception("%s: connecting failed", self.name)
                reason = repr(e)
            self.counters.add_or_log("bridge_reconnections", self.name)
            wait_s = delay_s * (1 + random.random() / 2)
            log.warning("%s: ActiveMQ unavailable (%s); again in %.1f s", self.name, reason, wait_s)
            stop.wait(wait_s)
            delay_s = min(delay_s * 2, self.settings.bridge_reconnect_max_s)
        if self.conn.is_connected():
            self.conn.disconnect()

    def send(self, destination: str, body: str | bytes, headers: dict[str, str]) -> None:
        """Send and wait until ActiveMQ confirms it has the message (a receipt), or raise BrokerUnavailable."""
        sent = self.send_async(destination, body, headers)
        sent.confirmed.wait(self.settings.bridge_receipt_timeout_s)
        self.release(sent)
        failure = sent.failure()
        if failure is not None:
            raise failure

    def send_async(self, destination: str, body: str | bytes, headers: dict[str, str]) -> Sent:
        """Send with a receipt to wait for: `Sent.confirmed` is set when it comes (or the connection is lost).
        `release` it once done with."""
        if not self.connected.is_set():
            raise BrokerUnavailable(f"{self.name}: not connected to ActiveMQ")
        now = time.monotonic()
        sent = Sent(destination, uuid.uuid4().hex, now, now + self.settings.bridge_receipt_timeout_s)
        with self._lock:
            self._receipts[sent.receipt] = sent
        try:
            self.conn.send(destination, body, headers={**headers, "receipt": sent.receipt})
        except (StompException, OSError) as e:
            self.release(sent)
            raise BrokerUnavailable(f"{self.name}: sending to {destination} failed: {e}") from e
        return sent

    def drop(self) -> None:
        """Close the connection now, from any thread (the receiver's too): ActiveMQ delivers again what it delivered
        here unacknowledged, and `run` connects anew. The socket is closed outright: a DISCONNECT would leave the
        connection open until ActiveMQ's receipt for it came through the receiver."""
        self.conn.transport.disconnect_socket()

    def release(self, sent: Sent) -> None:
        with self._lock:
            self._receipts.pop(sent.receipt, None)

    def subscribe(self, destination: str, headers: dict[str, str]) -> None:
        self.conn.subscribe(destination, id=destination, ack="client-individual", headers=headers)

    def ack(self, frame: Any) -> None:
        self.conn.ack(frame.headers["ack"])

    # -- stomp.py's listener ------------------------------------------------------------------------------------

    def on_message(self, frame: Any) -> None:
        if self._on_message is not None:
            self._on_message(frame)

    def on_receipt(self, frame: Any) -> None:
        self._settle(frame.headers.get("receipt-id", ""), None)

    def on_error(self, frame: Any) -> None:
        message = frame.headers.get("message", "error")
        log.error("%s: ActiveMQ error: %s", self.name, message)
        self._settle(frame.headers.get("receipt-id", ""), message)

    def on_disconnected(self) -> None:
        lost = self.connected.is_set()
        self.connected.clear()
        with self._lock:
            pending = list(self._receipts.values())
        for sent in pending:
            sent.errors.append("connection lost")
            sent.confirmed.set()
        if lost:
            log.warning("%s: lost the connection to ActiveMQ", self.name)
            self.counters.add_or_log("bridge_reconnections", self.name)

    def _settle(self, receipt: str, error: str | None) -> None:
        with self._lock:
            sent = self._receipts.get(receipt)
        if sent is not None:
            if error is not None:
                sent.errors.append(error)
            sent.confirmed.set()
