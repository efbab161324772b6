"""The bridge carrying 10 protocol servers of 10 children each, against 1 server of 2 children, in the same run.

For each deployment: the bridge's start (process start until both links report connected), its memory (RSS) once
connected, its ActiveMQ subscriptions, and the throughput of one child's queue (a burst of searchContact requests to
queue.searchContact_1_1, served by one worker), median and spread of `--runs`.

    python bench/bridge_scale.py [--burst 1000] [--runs 3]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bridge_search import REQUEST, ROOT, Replies, stomp_client  # noqa: E402  (sets the benchmark's environment)

sys.path.insert(0, str(ROOT))
import redis  # noqa: E402

from contactq.settings import get_settings  # noqa: E402
from protocol.fixture import load_fixture  # noqa: E402
from protocol.simulated import SimulatedWeChat  # noqa: E402
from tasks.queues import activemq_request_queues  # noqa: E402
from tests.bridge.conftest import BridgeProcess  # noqa: E402
from tests.stack import Worker  # noqa: E402

DEPLOYMENTS = {
    "1 server x 2 children": {1: [1, 2]},
    "10 servers x 10 children": {server: list(range(1, 11)) for server in range(1, 11)},
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def burst(count: int) -> float:
    replies = Replies()
    conn = stomp_client(replies)
    conn.subscribe("/queue/bench.reply.scale", id="r", ack="auto")
    try:
        start = time.perf_counter()
        for n in range(count):
            conn.send(
                "/queue/queue.searchContact_1_1",
                json.dumps({**REQUEST, "queueName": "bench.reply.scale", "run": replies.run, "n": n}),
            )
        replies.wait(count)
        return count / (max(replies.at.values()) - start)
    finally:
        conn.disconnect()


@click.command()
@click.option("--burst", "count", default=1000, show_default=True)
@click.option("--runs", default=3, show_default=True)
def main(count: int, runs: int) -> None:
    settings = get_settings()
    for url in (settings.store_url, settings.broker_url, settings.result_backend):
        redis.Redis.from_url(url).flushdb()
    SimulatedWeChat(redis.Redis.from_url(settings.store_url, decode_responses=True), 1, [1]).load(load_fixture())
    worker = Worker("scale", [1], loglevel="warning")
    worker.start()
    figures: dict[str, dict[str, list[float]]] = {name: {"start": [], "rss": [], "rate": []} for name in DEPLOYMENTS}
    try:
        worker.wait_ready()
        for _ in range(runs):
            for name, servers in DEPLOYMENTS.items():
                bridge = BridgeProcess(env={"CONTACTQ_SERVERS": json.dumps(servers)})
                started = time.time()
                bridge.start()
                try:
                    bridge.wait_connected()
                    figures[name]["start"].append(time.time() - started)
                    assert bridge.proc is not None
                    figures[name]["rss"].append(rss_mb(bridge.proc.pid))
                    burst(100)  # warm-up
                    figures[name]["rate"].append(burst(count))
                finally:
                    bridge.stop()
    finally:
        worker.stop()
    click.echo(f"the bridge by deployment; burst of {count} to one child's queue; median (min-max) of {runs} runs")
    for name, servers in DEPLOYMENTS.items():
        f = figures[name]
        subscriptions = sum(len(activemq_request_queues(s, children)) for s, children in servers.items())
        click.echo(
            f"  {name:26s} start {statistics.median(f['start']):5.2f} s ({min(f['start']):.2f}-{max(f['start']):.2f})"
            f"   RSS {statistics.median(f['rss']):5.0f} MB   {subscriptions:4d} subscriptions"
            f"   {statistics.median(f['rate']):5.0f} req/s ({min(f['rate']):.0f}-{max(f['rate']):.0f})"
        )
    small, large = (statistics.median(figures[name]["rate"]) for name in DEPLOYMENTS)
    click.echo(f"  one child's throughput, 10x10 / 1x2: {large / small:.2f}")


if __name__ == "__main__":
    main()
