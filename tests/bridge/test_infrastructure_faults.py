"""Faults of the infrastructure, on a stack of its own: a private Redis (append-only file on) that the tests restart
and fill, a worker and a bridge for server 7 (so that the session's bridge, which serves server 1, takes none of its
requests), and the shared ActiveMQ.

Each test sends searches with a unique number and friend requests through ActiveMQ, counts the replies by number (at
least once, with a stable correlation id), the friend requests that reached WeChat (exactly once), the dead letters,
and checks that normal traffic flows afterwards. The figures go to the table printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from protocol.fixture import DEFAULT_FIXTURE, load_fixture
from protocol.simulated import SimulatedWeChat
from tasks.store import AccountRegistry
from tests.bridge.conftest import BridgeProcess, Stomp
from tests.brokers import BROKER
from tests.faults import Figures, record
from tests.servers import PrivateRedis
from tests.stack import ACCOUNT_A, Worker

A = ACCOUNT_A
SERVER = 7
MANUAL = {"xiaolongnv": "wxid_a9s8d7f6g5h4j3", "wu_yan": "wxid_u1i2o3p4a5s6d7"}  # strangers who answer by hand

pytestmark = pytest.mark.skipif(BROKER != "redis", reason="these faults are of the Redis broker")


class OwnStack:
    def __init__(self, private: PrivateRedis, fixture: Path) -> None:
        self.redis = private
        self.env = {
            "CONTACTQ_BROKER_URL": private.url(1),
            "CONTACTQ_RESULT_BACKEND": private.url(2),
            "CONTACTQ_STORE_URL": private.url(0),
            "CONTACTQ_SIM_URL": private.url(0),
            # Faults of Redis and the processes, whatever the session's backend: the simulation lives in this Redis.
            "CONTACTQ_PROTOCOL": "simulated",
            "CONTACTQ_SERVER_ID": str(SERVER),
            "CONTACTQ_SERVERS": json.dumps({str(SERVER): [1]}),
            "CONTACTQ_FIXTURE": str(fixture),
            "CONTACTQ_VISIBILITY_TIMEOUT_S": "20",
            "CONTACTQ_UNACKED_RESTORE_INTERVAL_S": "1",
            # The replies a killed bridge had taken are taken by the next one after this long.
            "CONTACTQ_BRIDGE_ORPHAN_IDLE_S": "12",
            "CONTACTQ_RATE_LIMITS": json.dumps({"searchContact": {"count": 1000, "period_s": 60}}),
        }
        self.fixture = fixture
        self.worker = Worker(f"own{SERVER}", [1], self.env, concurrency=4)
        self.bridge = BridgeProcess(env=self.env)
        self.sim = SimulatedWeChat(redis.Redis.from_url(private.url(0), decode_responses=True), SERVER, [1])

    def queue(self, op: str) -> str:
        return f"/queue/queue.{op}_{SERVER}_1"

    def reset(self) -> None:
        """A fresh simulation and contact store, no memory of earlier friend requests."""
        r = self.sim.r
        with r.lock(self.sim.lock_key, timeout=60, blocking_timeout=60):
            keys = [key for key in r.scan_iter(count=1000) if key != self.sim.lock_key]
            for start in range(0, len(keys), 1000):
                r.unlink(*keys[start : start + 1000])
            self.sim.load(load_fixture(self.fixture))
        AccountRegistry(r).register(self.sim.sessions(1))


@pytest.fixture(scope="module")
def own(broker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStack]:
    doc = json.loads(DEFAULT_FIXTURE.read_text())
    for account in doc["accounts"]:
        account["server_id"] = SERVER
    fixture = tmp_path_factory.mktemp("fixture") / "server7.json"
    fixture.write_text(json.dumps(doc))
    private = PrivateRedis()
    private.start()
    stack = OwnStack(private, fixture)
    stack.reset()
    stack.worker.start()
    stack.bridge.start()
    try:
        stack.worker.wait_ready()
        stack.bridge.wait_connected()
        yield stack
    finally:
        stack.bridge.stop()
        stack.worker.stop()
        private.stop()


def friend_requests(own: OwnStack, answer_to: str) -> list[dict[str, Any]]:
    requests = []
    for query in MANUAL:
        found = own.sim.search(A["uin"], query)
        requests.append(
            {
                "adminUserId": 18,
                "uin": A["uin"],
                "userName": query,
                "v1": found.v1,
                "v2": found.v2,
                "verify": "hi",
                "type": 3,
                "queueName": answer_to,
            }
        )
    return requests


def searches(answer_to: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": answer_to, "n": start + n}
        for n in range(count)
    ]


def collect(amq: Stomp, answer_to: str, expected: set[int], timeout_s: float) -> tuple[Counter[int], float]:
    """Replies by number until every expected one came, then a moment longer for any second copy; and when the last
    expected one came."""
    seen: Counter[int] = Counter()
    correlation: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    while not expected <= set(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no reply to {sorted(expected - set(seen))}"
        try:
            [(headers, reply)] = amq.take_json(f"/queue/{answer_to}", timeout_s=remaining)
        except AssertionError:
            continue
        assert reply["status"] == 0, reply
        seen[reply["n"]] += 1
        # A request answered twice is answered under the same correlation id.
        assert correlation.setdefault(reply["n"], headers["correlation-id"]) == headers["correlation-id"]
    last_at = time.monotonic()
    try:
        while True:
            [(_, reply)] = amq.take_json(f"/queue/{answer_to}", timeout_s=2)
            seen[reply["n"]] += 1
    except AssertionError:
        return seen, last_at


def sends_to_wechat(own: OwnStack) -> Counter[str]:
    return Counter(row[2] for row in own.sim.verify_log() if row[1] == 2)


def normal_traffic(own: OwnStack, amq: Stomp, count: int = 5) -> int:
    answer_to = f"queue.reply.after.{os.getpid()}.{time.monotonic_ns()}"
    amq.listen(f"/queue/{answer_to}")
    for request in searches(answer_to, count, start=1000):
        amq.send(own.queue("searchContact"), json.dumps(request))
    seen, _ = collect(amq, answer_to, set(range(1000, 1000 + count)), timeout_s=60)
    return sum(seen.values())


def count_everything(
    own: OwnStack, amq: Stomp, answer_to: str, requests: list[dict[str, Any]], case: str, since: float | None = None
) -> None:
    """Every search answered (by number) and both friend requests answered, each friend request sent to WeChat once,
    and ordinary traffic flowing after: recorded as `case`, with the time from `since` to the last reply."""
    seen, last_at = collect(amq, answer_to, set(range(len(requests))), timeout_s=120)
    added = amq.take_json(f"/queue/{answer_to}.adds", count=len(MANUAL), timeout_s=60)
    own.sim.set_faults()
    assert all(reply["status"] == 0 for _, reply in added)
    assert sends_to_wechat(own) == Counter(MANUAL.values())  # each friend request reached WeChat once
    figures = Figures(
        case,
        sent=len(requests) + len(MANUAL),
        replies=sum(seen.values()) + len(added),
        wechat_sends=sum(sends_to_wechat(own).values()),
        recovery_s=None if since is None else last_at - since,
    )
    record(figures, normal_after=normal_traffic(own, amq))


def test_redis_restarted_loses_and_doubles_nothing(own: OwnStack) -> None:
    own.reset()
    answer_to = f"queue.reply.restart.{os.getpid()}"
    amq = Stomp()
    amq.listen(f"/queue/{answer_to}")
    adds = friend_requests(own, f"{answer_to}.adds")
    amq.listen(f"/queue/{answer_to}.adds")
    own.sim.set_faults(latency_ms=200)
    requests = searches(answer_to, 40)

    def traffic() -> None:
        for n, request in enumerate(requests):
            amq.send(own.queue("searchContact"), json.dumps(request))
            if n in (5, 25):
                amq.send(own.queue("addContact"), json.dumps(adds[n // 25]))
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    sender.start()
    time.sleep(0.6)
    own.redis.stop()
    time.sleep(2)
    own.redis.start()
    back_at = time.monotonic()
    sender.join()
    try:
        count_everything(own, amq, answer_to, requests, "Redis restarted (append-only file)", since=back_at)
    finally:
        own.sim.set_faults()
        amq.close()


def test_redis_out_of_memory_holds_requests_until_it_has_room(own: OwnStack) -> None:
    own.reset()
    answer_to = f"queue.reply.full.{os.getpid()}"
    amq = Stomp()
    amq.listen(f"/queue/{answer_to}")
    amq.listen("/queue/DLQ.contactq")
    own.sim.set_faults(latency_ms=1500)
    running = searches(answer_to, 4)
    for request in running:  # these run while Redis fills: their replies cannot be written
        amq.send(own.queue("searchContact"), json.dumps(request))
    time.sleep(0.8)
    own.redis.set_maxmemory(1)  # every write refused (noeviction): as full as Redis gets
    try:
        waiting = searches(answer_to, 6, start=len(running))
        for request in waiting:  # these the bridge cannot hand on: they wait in ActiveMQ
            amq.send(own.queue("searchContact"), json.dumps(request))
        time.sleep(4)
    finally:
        own.redis.set_maxmemory(0)
    room_at = time.monotonic()
    own.sim.set_faults()
    try:
        seen, last_at = collect(amq, answer_to, set(range(len(running) + len(waiting))), timeout_s=120)
        record(
            Figures(
                "Redis out of memory for 4 s",
                sent=len(running) + len(waiting),
                replies=sum(seen.values()),
                recovery_s=last_at - room_at,
            ),
            normal_after=normal_traffic(own, amq),
        )
    finally:
        amq.close()


def test_bridge_killed_loses_and_doubles_nothing(own: OwnStack) -> None:
    own.reset()
    answer_to = f"queue.reply.bridgekill.{os.getpid()}"
    amq = Stomp()
    amq.listen(f"/queue/{answer_to}")
    adds = friend_requests(own, f"{answer_to}.adds")
    amq.listen(f"/queue/{answer_to}.adds")
    requests = searches(answer_to, 60)
    for n, request in enumerate(requests):
        amq.send(own.queue("searchContact"), json.dumps(request))
        if n == 20:
            for add in adds:
                amq.send(own.queue("addContact"), json.dumps(add))
        if n == 30:
            assert own.bridge.proc is not None
            os.killpg(own.bridge.proc.pid, signal.SIGKILL)
            own.bridge.proc.wait(timeout=10)
            own.bridge.start()
    try:
        own.bridge.wait_connected()
        count_everything(own, amq, answer_to, requests, "bridge SIGKILL mid-traffic")
    finally:
        amq.close()


class DelayingProxy:
    """A TCP proxy to ActiveMQ's STOMP port that, while `delay_s` is set, holds what ActiveMQ sends (receipts among
    it) for that long: late receipts, as a slow or congested broker gives them."""

    def __init__(self, target_port: int = 61613) -> None:
        self.target_port = target_port
        self.delay_s = 0.0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_broker: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_broker and self.delay_s:
                    time.sleep(self.delay_s)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                s.close()

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def test_late_receipts_answer_at_least_once_under_one_correlation_id(own: OwnStack) -> None:
    own.reset()
    proxy = DelayingProxy()
    own.bridge.stop()
    # A bridge that waits 1 s for a receipt, behind the proxy.
    slow = BridgeProcess(
        env=own.env | {"CONTACTQ_ACTIVEMQ_STOMP_PORT": str(proxy.port), "CONTACTQ_BRIDGE_RECEIPT_TIMEOUT_S": "1"}
    )
    slow.start()
    answer_to = f"queue.reply.late.{os.getpid()}"
    amq = Stomp()
    amq.listen(f"/queue/{answer_to}")
    try:
        slow.wait_connected()
        proxy.delay_s = 1.5  # every receipt comes after the bridge stopped waiting for it
        requests = searches(answer_to, 10)
        for request in requests:
            amq.send(own.queue("searchContact"), json.dumps(request))
        time.sleep(6)
        proxy.delay_s = 0
        seen, _ = collect(amq, answer_to, set(range(len(requests))), timeout_s=60)
        record(
            Figures("late STOMP receipts (1.5 s, timeout 1 s)", sent=len(requests), replies=sum(seen.values())),
            normal_after=normal_traffic(own, amq),
        )
    finally:
        amq.close()
        slow.stop()
        proxy.close()
        own.bridge.start()
        own.bridge.wait_connected()
