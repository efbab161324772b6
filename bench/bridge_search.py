"""searchContact end to end through ActiveMQ and the bridge, against the raw Celery and raw STOMP round trips.

Four paths, measured in the same run, each as a burst (requests/s) and one request at a time (p50/p99 latency):
- bridge: a STOMP producer sends a TextMessage to queue.searchContact_1_1, the bridge hands it to the worker, the reply
  comes back on the request's queueName;
- bare Celery: apply_async of a task that returns its argument (bench/bare_celery.py, prefork 2, the same Redis),
  result back: the baseline of the ratio;
- raw Celery: apply_async of the same searchContact task to the same worker, result back from the result backend;
- raw ActiveMQ: a STOMP request to a queue, echoed by a STOMP consumer to a reply queue; and again with the reply
  persistent and confirmed by a receipt before the request is acknowledged, as the bridge does.

    python bench/bridge_search.py [--burst 2000] [--sequential 200] [--rounds 3]
"""

from __future__ import annotations

import json
import os
import signal

from benchenv import BARE_BROKER_URL, BARE_RESULT_BACKEND, BENCH_ENV

os.environ.update(
    BENCH_ENV,
    CONTACTQ_SERVERS=json.dumps({"1": [1]}),
    # The benchmark searches far faster than any account may: lift the per-account limit for it.
    CONTACTQ_RATE_LIMITS=json.dumps({"searchContact": {"count": 10**9, "period_s": 1}}),
)

import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import click  # noqa: E402
import redis  # noqa: E402
import stomp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contactq.settings import get_settings  # noqa: E402
from protocol.fixture import load_fixture  # noqa: E402
from protocol.simulated import SimulatedWeChat  # noqa: E402
from tasks.search_contact import search_contact  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from bare_celery import echo  # noqa: E402
from cpu import CpuMeter, children  # noqa: E402

from tests.bridge.conftest import BridgeProcess  # noqa: E402
from tests.stack import Worker  # noqa: E402

settings = get_settings()

REQUEST = {"adminUserId": 18, "uin": "1150109773", "userName": "ops_two"}


class Replies(stomp.ConnectionListener):  # type: ignore[misc]
    """Arrival times of replies, by the request number they echo. Requests carry `run`: a reply left on the queue by
    an earlier, interrupted run is not counted."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex
        self.at: dict[int, float] = {}
        self.doubled = 0
        self.changed = threading.Condition()

    def on_message(self, frame: Any) -> None:
        body = json.loads(frame.body)
        if body.get("run") != self.run:
            return
        with self.changed:
            n = int(body["n"])
            self.doubled += n in self.at
            self.at[n] = time.perf_counter()
            self.changed.notify_all()

    def wait(self, count: int, timeout_s: float = 300) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.at) >= count, timeout_s):
                raise RuntimeError(f"{len(self.at)} of {count} replies")


def stomp_client(listener: stomp.ConnectionListener | None = None) -> stomp.Connection12:
    conn = stomp.Connection12([("127.0.0.1", 61613)], auto_content_length=False)
    if listener is not None:
        conn.set_listener("bench", listener)
    conn.connect(wait=True)
    return conn


class Figures(NamedTuple):
    rate: float  # requests/s over the burst
    latencies: list[float]  # ms, one request at a time
    cpu_ms: dict[str, float]  # CPU of each part per request of the burst
    doubled: int = 0  # replies that came twice (every path waits for all of them: none is lost)


METER = CpuMeter()  # its parts are known once the processes run


def measure(send: Callable[[int], None], replies: Replies, burst: int, sequential: int) -> Figures:
    replies.at.clear()
    METER.start()
    start = time.perf_counter()
    for n in range(burst):
        send(n)
    replies.wait(burst)
    rate = burst / (max(replies.at.values()) - start)
    cpu = METER.stop()
    latencies = []
    for n in range(burst, burst + sequential):
        sent = time.perf_counter()
        send(n)
        replies.wait(n + 1)
        latencies.append((replies.at[n] - sent) * 1000)
    return Figures(rate, latencies, {k: v * 1000 / burst for k, v in cpu.items()}, replies.doubled)


def stomp_path(
    request_queue: str, reply_queue: str, burst: int, sequential: int, body: dict[str, Any], headers: dict[str, str]
) -> Figures:
    """Requests sent over STOMP to `request_queue`, numbered; their replies counted on `reply_queue`."""
    replies = Replies()
    conn = stomp_client(replies)
    conn.subscribe(f"/queue/{reply_queue}", id="r", ack="auto")
    try:
        return measure(
            lambda n: conn.send(
                f"/queue/{request_queue}", json.dumps({**body, "run": replies.run, "n": n}), headers=headers
            ),
            replies,
            burst,
            sequential,
        )
    finally:
        conn.disconnect()


def bridge_path(burst: int, sequential: int) -> Figures:
    body = {**REQUEST, "queueName": "bench.reply.bridge"}
    return stomp_path("queue.searchContact_1_1", "bench.reply.bridge", burst, sequential, body, {})


def round_trips(send: Callable[[int], Any], burst: int, sequential: int) -> Figures:
    METER.start()
    start = time.perf_counter()
    for result in [send(n) for n in range(burst)]:
        result.get(timeout=300)
    rate = burst / (time.perf_counter() - start)
    cpu = METER.stop()
    latencies = []
    for n in range(sequential):
        sent = time.perf_counter()
        send(n).get(timeout=60)
        latencies.append((time.perf_counter() - sent) * 1000)
    return Figures(rate, latencies, {k: v * 1000 / burst for k, v in cpu.items()})


def celery_path(burst: int, sequential: int) -> Figures:
    def send(n: int) -> Any:
        # The same request as on the bridge path, reply queue included: the same work in the worker.
        request = {**REQUEST, "queueName": "bench.reply.celery", "n": n}
        return search_contact.apply_async(args=[request], queue="queue.searchContact_1_1")

    return round_trips(send, burst, sequential)


def bare_path(burst: int, sequential: int) -> Figures:
    return round_trips(lambda n: echo.apply_async(args=[{**REQUEST, "n": n}]), burst, sequential)


class Echo(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.conn = stomp_client(self)
        self.conn.subscribe("/queue/bench.request.raw", id="e", ack="client-individual")

    def on_message(self, frame: Any) -> None:
        self.conn.send("/queue/bench.reply.raw", frame.body, headers={"persistent": "true"})
        self.conn.ack(frame.headers["ack"])


class ConfirmedEcho(stomp.ConnectionListener):  # type: ignore[misc]
    """An echo held to the bridge's guarantee: the reply goes out on a second connection with a receipt, and the
    request is acknowledged once ActiveMQ has confirmed the reply."""

    def __init__(self) -> None:
        self.receipts: dict[str, threading.Event] = {}
        self.out = stomp_client(self)
        self.conn = stomp_client(Forward(self))
        self.conn.subscribe("/queue/bench.request.confirmed", id="e", ack="client-individual")

    def on_receipt(self, frame: Any) -> None:
        confirmed = self.receipts.pop(frame.headers["receipt-id"], None)
        if confirmed is not None:  # not the DISCONNECT's
            confirmed.set()

    def forward(self, frame: Any) -> None:
        receipt, confirmed = str(frame.headers["message-id"]), threading.Event()
        self.receipts[receipt] = confirmed
        headers = {"persistent": "true", "receipt": receipt}
        self.out.send("/queue/bench.reply.confirmed", frame.body, headers=headers)
        confirmed.wait(10)
        self.conn.ack(frame.headers["ack"])


class Forward(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self, echo: ConfirmedEcho) -> None:
        self.echo = echo

    def on_message(self, frame: Any) -> None:
        self.echo.forward(frame)


def confirmed_activemq_path(burst: int, sequential: int) -> Figures:
    """The same messages as the bridge path: the request as the bridge path sends it, the reply persistent and
    confirmed."""
    echo = ConfirmedEcho()
    try:
        return stomp_path("bench.request.confirmed", "bench.reply.confirmed", burst, sequential, REQUEST, {})
    finally:
        echo.conn.disconnect()
        echo.out.disconnect()


def activemq_path(burst: int, sequential: int) -> Figures:
    echo = Echo()
    try:
        return stomp_path("bench.request.raw", "bench.reply.raw", burst, sequential, REQUEST, {"persistent": "true"})
    finally:
        echo.conn.disconnect()


def bare_worker() -> subprocess.Popen[bytes]:
    """A worker of the bare app: prefork 2, the same Redis."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bare_celery", "worker", "-c", "2", "-n", "bare@%h", "-l", "warning"],
        cwd=ROOT / "bench",
        env={**os.environ},
        start_new_session=True,  # stopped with its pool processes
    )


def activemq_pid() -> int:
    """The broker `scripts/activemq.sh` started (0, measured as nothing, when it was started otherwise)."""
    pidfile = Path(os.environ.get("ACTIVEMQ_BASE", ROOT / ".run" / "activemq")) / "activemq.pid"
    try:
        return int(pidfile.read_text())
    except (OSError, ValueError):
        return 0


def wait_for_ping(app: Any, hostname: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if app.control.ping(destination=[hostname], timeout=0.5):
            return
    raise RuntimeError(f"{hostname} did not start")


def p(latencies: list[float], q: float) -> float:
    return statistics.quantiles(latencies, n=100)[int(q) - 1]


BRIDGE = "bridge (STOMP -> bridge -> worker -> STOMP)"
PATHS: dict[str, Callable[[int, int], Figures]] = {
    BRIDGE: bridge_path,
    "bare Celery (trivial task -> result)": bare_path,
    "raw Celery (searchContact -> result)": celery_path,
    "raw ActiveMQ (STOMP echo)": activemq_path,
    "raw ActiveMQ, reply confirmed (STOMP echo)": confirmed_activemq_path,
}


def spread(values: list[float], digits: int) -> str:
    """Median (min-max), or the one value."""
    median = f"{statistics.median(values):.{digits}f}"
    return median if len(values) == 1 else f"{median} ({min(values):.{digits}f}-{max(values):.{digits}f})"


@click.command()
@click.option("--burst", default=2000, show_default=True)
@click.option("--sequential", default=200, show_default=True)
@click.option("--rounds", default=3, show_default=True, help="every path measured in turn, this many times")
def main(burst: int, sequential: int, rounds: int) -> None:
    store = redis.Redis.from_url(settings.store_url, decode_responses=True)
    for url in (settings.store_url, settings.broker_url, settings.result_backend, BARE_BROKER_URL, BARE_RESULT_BACKEND):
        redis.Redis.from_url(url).flushdb()
    SimulatedWeChat(store, 1, [1], prefix=settings.sim_prefix).load(load_fixture(settings.fixture))
    subprocess.run([str(ROOT / "scripts" / "activemq.sh"), "up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    # At the bare worker's log level (Celery's default, warning): the same logging on both sides.
    worker = Worker("bench", [1], loglevel="warning")
    bare = bare_worker()
    bridge = BridgeProcess()
    bridge.start()
    worker.start()
    try:
        worker.wait_ready()
        wait_for_ping(echo.app, "bare@" + socket.gethostname(), bare)
        bridge.wait_connected()
        assert worker.proc is not None and bridge.proc is not None
        METER.parts.update(
            {
                "bridge": [bridge.proc.pid],
                "worker": [worker.proc.pid],
                "worker pool": children(worker.proc.pid),
                "bare worker": [bare.pid],
                "bare pool": children(bare.pid),
                "ActiveMQ": [activemq_pid()],
                "Redis": [int(store.info("server")["process_id"])],
                "this client": [os.getpid()],
            }
        )
        for path in PATHS.values():
            path(1000, 20)  # warm-up, ActiveMQ's JIT included
        # The paths in turn, round after round: the machine's speed drifts, and a ratio is taken within a round.
        results: dict[str, list[Figures]] = {name: [] for name in PATHS}
        for _ in range(rounds):
            for name, path in PATHS.items():
                results[name].append(path(burst, sequential))
    finally:
        bridge.stop()
        worker.stop()
        os.killpg(bare.pid, signal.SIGTERM)
        bare.wait(timeout=20)
    click.echo(
        f"searchContact, burst of {burst}, then {sequential} one at a time; {rounds} rounds, median (min-max) of the "
        "rounds, latencies of all rounds"
    )
    for name, runs in results.items():
        latencies = [ms for figures in runs for ms in figures.latencies]
        click.echo(
            f"  {name:46s} {spread([f.rate for f in runs], 0):>16s} req/s   p50 {p(latencies, 50):5.1f} ms   "
            f"p99 {p(latencies, 99):5.1f} ms   {sum(f.doubled for f in runs)} doubled"
        )
        cpu = {part: statistics.median(f.cpu_ms.get(part, 0.0) for f in runs) for part in runs[0].cpu_ms}
        parts = "  ".join(f"{part} {ms:.2f}" for part, ms in cpu.items() if ms >= 0.05)
        click.echo(f"  {'':46s} CPU ms a request: {parts}  (total {sum(cpu.values()):.2f})")
    for baseline in list(PATHS)[1:]:
        ratios = [ours.rate / base.rate for ours, base in zip(results[BRIDGE], results[baseline], strict=True)]
        click.echo(f"  ratio bridge / {baseline}: {spread(ratios, 2)}")


if __name__ == "__main__":
    main()
