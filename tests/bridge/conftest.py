"""The bridge's stack: a real ActiveMQ (started by the project's script when absent) and a real bridge process."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import stomp

from bridge.service import HEARTBEAT_KEY
from tests.stack import ROOT, Stack, Worker


def activemq(command: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "activemq.sh"), command], cwd=ROOT, check=True, capture_output=True)


def broker_answers() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", 61613)) == 0


class BridgeProcess:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="contactq-bridge-", suffix=".log")[1])
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "contactq.cli", "bridge"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_connected(self, after: float = 0.0, timeout_s: float = 60) -> None:
        """Until the bridge reports (its heartbeat in Redis) both links connected, the requests link since `after`."""
        assert self.proc is not None
        store = redis.Redis.from_url(self.env["CONTACTQ_STORE_URL"], decode_responses=True)
        key = f"{HEARTBEAT_KEY}{socket.gethostname()}:{self.proc.pid}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            state = json.loads(store.get(key) or "{}")
            if state.get("requests") and state.get("replies") and state.get("connected_at", 0) > after:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the bridge did not connect:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class Stomp(stomp.ConnectionListener):  # type: ignore[misc]
    """A STOMP client playing a producer and a consumer on ActiveMQ, as a test sees it."""

    def __init__(self) -> None:
        self.conn = stomp.Connection12([("127.0.0.1", 61613)], auto_content_length=False, auto_decode=False)
        self.conn.set_listener("test", self)
        self.conn.connect(wait=True)
        self.inbox: dict[str, queue.Queue[tuple[dict[str, str], bytes]]] = {}
        self.receipts: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()

    def on_message(self, frame: Any) -> None:
        with self._lock:
            box = self.inbox.setdefault(frame.headers["subscription"], queue.Queue())
        box.put((dict(frame.headers), frame.body))

    def on_receipt(self, frame: Any) -> None:
        self.receipts.put(frame.headers["receipt-id"])

    def listen(self, destination: str) -> None:
        """Subscribe, and return once ActiveMQ confirms it: a topic's messages published from then on arrive."""
        with self._lock:
            self.inbox.setdefault(destination, queue.Queue())
        receipt = uuid.uuid4().hex
        self.conn.subscribe(destination, id=destination, ack="auto", headers={"receipt": receipt})
        assert self.receipts.get(timeout=20) == receipt

    def send(self, destination: str, body: str | bytes, **headers: str) -> str:
        """Send as a TextMessage (or as what the headers make it); returns the `test-marker` header it carries."""
        marker = uuid.uuid4().hex
        self.conn.send(destination, body, headers={"persistent": "true", "test-marker": marker, **headers})
        return marker

    def take(self, destination: str, count: int = 1, timeout_s: float = 20) -> list[tuple[dict[str, str], Any]]:
        got = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            try:
                headers, body = self.inbox[destination].get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{destination}: {len(got)} of {count} messages within {timeout_s} s") from None
            got.append((headers, body))
        return got

    def take_marked(
        self, destination: str, markers: set[str], timeout_s: float = 20
    ) -> list[tuple[dict[str, str], Any]]:
        """The messages carrying these test markers, passing over what earlier runs left in a persistent queue."""
        found: list[tuple[dict[str, str], Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < len(markers):
            [(headers, body)] = self.take(destination, 1, max(0.01, deadline - time.monotonic()))
            if headers.get("test-marker") in markers:
                found.append((headers, body))
        return found

    def take_json(self, destination: str, count: int = 1, timeout_s: float = 20) -> list[tuple[dict[str, str], Any]]:
        return [(h, json.loads(b)) for h, b in self.take(destination, count, timeout_s)]

    def close(self) -> None:
        self.conn.disconnect()


@pytest.fixture(scope="session")
def broker() -> Iterator[None]:
    activemq("up")
    yield


@pytest.fixture(scope="module")
def bridge(broker: None, workers: list[Worker]) -> Iterator[BridgeProcess]:
    # Per module: while it runs, the bridge drains the outboxes that other tests read directly.
    process = BridgeProcess()
    process.start()
    try:
        process.wait_connected()
        yield process
    finally:
        process.stop()


@pytest.fixture
def amq(bridge: BridgeProcess, stack: Stack) -> Iterator[Stomp]:
    client = Stomp()
    yield client
    client.close()
