"""Helpers that drive the real stack: worker processes, the simulated WeChat, and taps on the broker's queues."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from celery.result import AsyncResult
from kombu import Connection, Queue

from contactq.settings import Settings, get_settings
from protocol.fixture import load_fixture
from protocol.simulated import SimulatedWeChat
from tasks import app, submit
from tasks.outbox import Outbox, RepliesStream, events_exchange
from tasks.store import AccountRegistry, ContactStore

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_A = {"uin": "1150109773", "wxid": "wxid_az12gf9ugnoh22", "child": 1}
ACCOUNT_B = {"uin": "2250109774", "wxid": "wxid_b7q2m0x1kk9922", "child": 2}


def caller_app(broker_url: str) -> Celery:
    """A separate caller, as another Python service would have: it sends tasks by name and controls workers."""
    app = Celery("caller")
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker_url
    return app


class Worker:
    """A real `celery worker` process for some children of server 1, with its own log file."""

    def __init__(
        self,
        name: str,
        child_ids: list[int],
        env: dict[str, str] | None = None,
        concurrency: int = 2,
        pool_args: tuple[str, ...] = (),
        loglevel: str = "info",
    ):
        self.name = name
        self.hostname = f"{name}@{socket.gethostname()}"
        self.child_ids = child_ids
        self.env = env or {}
        # `-c N` unless the pool is given otherwise (`--autoscale=max,min`).
        self.pool_args = pool_args or ("-c", str(concurrency))
        self.loglevel = loglevel
        self.log_path = Path(tempfile.mkstemp(prefix=f"contactq-{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "CONTACTQ_CHILD_IDS": ",".join(map(str, self.child_ids)), **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tasks",
                    "worker",
                    "-n",
                    f"{self.name}@%h",
                    *self.pool_args,
                    "-l",
                    self.loglevel,
                    "--without-mingle",
                    "--without-gossip",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Until the worker answers a ping on its broker."""
        control = caller_app(self.env.get("CONTACTQ_BROKER_URL", os.environ["CONTACTQ_BROKER_URL"])).control
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if control.ping(destination=[self.hostname], timeout=0.5):
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
        raise RuntimeError(f"worker {self.name} did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a crashed machine would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Collector:
    """What arrives somewhere, as (where, payload) pairs: `take` what came since the last take."""

    def take(self) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def wait(
        self, done: Callable[[list[tuple[str, Any]]], bool], timeout_s: float = 15, quiet_s: float = 0.3
    ) -> list[tuple[str, Any]]:
        """Collect until `done(collected)` holds, then a little longer to catch anything that should not come."""
        collected: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            collected += self.take()
            if done(collected):
                time.sleep(quiet_s)
                return collected + self.take()
            time.sleep(0.02)
        raise AssertionError(f"timed out; collected {collected}")


class Tap(Collector):
    """Reads what arrives on one broker queue: (routing key, payload) pairs."""

    def __init__(self, conn: Connection, queue: Queue) -> None:
        self.queue = queue(conn.channel())
        self.queue.declare()

    def take(self) -> list[tuple[str, Any]]:
        taken = []
        while (message := self.queue.get(no_ack=True)) is not None:
            taken.append((message.delivery_info["routing_key"], message.payload))
        return taken

    def purge(self) -> None:
        self.queue.purge()


class RepliesTap(Collector):
    """Reads the replies stream, leaving it as it is (no bridge is told): (stream, reply) pairs, in order."""

    def __init__(self, r: redis.Redis, key: str) -> None:
        self.r = r
        self.key = key
        self.last = "-"

    def take(self) -> list[tuple[str, Any]]:
        entries = self.r.xrange(self.key, self.last if self.last == "-" else f"({self.last}", "+")
        if entries:
            self.last = entries[-1][0]
        return [(self.key, json.loads(fields[RepliesStream.FIELD])) for _, fields in entries]

    def purge(self) -> None:
        self.r.delete(self.key)
        self.last = "-"


class Stack:
    """The session's stack as the tests see it: call operations, steer WeChat, read the store and the topics."""

    def __init__(self, cfg: Settings | None = None) -> None:
        cfg = cfg or get_settings()
        self.settings = cfg
        self.app = app
        self.r = redis.Redis.from_url(cfg.store_url, decode_responses=True)
        self.sim = SimulatedWeChat(self.r, cfg.server_id, [1, 2], prefix=cfg.sim_prefix, page_size=cfg.sim_page_size)
        self.store = ContactStore(self.r)
        self.registry = AccountRegistry(self.r)
        self.conn = Connection(cfg.broker_url)
        outbox = Outbox(app, cfg, self.r)
        # A Python consumer bound with topic.#, declared before anything is published.
        self.events = Tap(self.conn, Queue("test.events", events_exchange(cfg), routing_key="topic.#"))
        self.bridge_events = Tap(self.conn, outbox.events_queue)
        self.replies = RepliesTap(self.r, outbox.replies.key)
        self.deadletters = Tap(self.conn, outbox.deadletter_queue)

    def reset(self) -> None:
        # Under the simulation's loading lock: a process building its WeChat client meanwhile would otherwise find no
        # simulation and load one of its own over this one.
        with self.r.lock(self.sim.lock_key, timeout=60, blocking_timeout=60):
            keys = [key for key in self.r.scan_iter(count=1000) if key != self.sim.lock_key]
            for start in range(0, len(keys), 1000):
                self.r.unlink(*keys[start : start + 1000])
            self.sim.load(load_fixture(self.settings.fixture))
        for child in (1, 2):
            self.registry.register(self.sim.sessions(child))
        for tap in (self.events, self.bridge_events, self.replies, self.deadletters):
            tap.purge()

    def submit(self, op: str, request: Any, child: int | None = None, task_id: str | None = None) -> AsyncResult[Any]:
        return submit(op, request, server_id=1 if child else None, child_id=child, task_id=task_id)

    def call(
        self, op: str, request: Any, child: int | None = None, timeout_s: float = 20, task_id: str | None = None
    ) -> Any:
        return self.submit(op, request, child, task_id).get(timeout=timeout_s)

    def add_contact_request(self, query: str) -> dict[str, Any]:
        """An addContact request from account A to whom `query` finds, with the v1 and v2 of a real search."""
        found = self.call(
            "searchContact", {"adminUserId": 18, "uin": ACCOUNT_A["uin"], "userName": query, "queueName": "q"}
        )
        assert found["status"] == 0, found
        return {
            "adminUserId": 18,
            "uin": ACCOUNT_A["uin"],
            "userName": query,
            "v1": found["user_name"],
            "v2": found["stranger"],
            "verify": "hi",
            "type": 3,
            "queueName": "q",
        }

    def contact(self, account: dict[str, Any], username: str) -> dict[str, Any] | None:
        return self.store.contact(account["uin"], account["wxid"], username)

    def close(self) -> None:
        self.conn.release()
        self.r.close()
