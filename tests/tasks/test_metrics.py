"""Metrics for Prometheus: counters kept across processes in Redis, served with the queue depths at each scrape."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from contactq.errors import RateLimited
from contactq.settings import RateLimit
from tasks.guards import RateLimiter
from tasks.metrics import Counters
from tests.stack import ACCOUNT_A, ROOT, Stack
from tests.tasks.test_flower import free_port


def test_rate_limit_refusals_are_counted(store_redis: redis.Redis) -> None:
    counters = Counters(store_redis)
    limiter = RateLimiter(store_redis, counters)
    limit = RateLimit(count=2, period_s=60)
    for request_id in ("r1", "r2", "r1"):  # r1 again: the same request retried takes no second slot
        limiter.acquire("1150109773", "addContact", limit, request_id)
    with pytest.raises(RateLimited, match="limited to 2 per 60 s"):
        limiter.acquire("1150109773", "addContact", limit, "r3")
    limiter.acquire("2250109774", "addContact", limit, "r3")  # per account
    assert counters.read()["rate_limited"] == {("addContact", "1150109773"): 1}


@pytest.fixture
def exporter(stack: Stack) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "contactq.cli", "metrics"],
        cwd=ROOT,
        env={**os.environ, "CONTACTQ_METRICS_PORT": str(port)},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_and_queue_depths_are_exported(stack: Stack, exporter: str) -> None:
    search = {"adminUserId": 18, "uin": ACCOUNT_A["uin"], "queueName": "queue.reply.metrics"}
    assert stack.call("searchContact", search | {"userName": "ops_two"})["status"] == 0
    assert stack.call("searchContact", search | {"userName": "nobody-at-all"})["status"] == 404
    # Accounts not hosted here share one label, however many uins are sent: the label set stays bounded.
    for n in range(5):
        assert stack.call("searchContact", search | {"uin": f"99{n}", "userName": "x"}, child=1)["status"] == 503
    metrics = scrape(exporter)
    other = (("op", "searchContact"), ("status", "503"), ("uin", "other"))
    assert metrics[("contactq_requests_total", other)] == 5
    assert not [key for key in metrics if ("uin", "990") in key[1]]
    labels = (("op", "searchContact"), ("status", "{}"), ("uin", ACCOUNT_A["uin"]))
    assert metrics[("contactq_requests_total", tuple((k, v.format(0)) for k, v in labels))] == 1
    assert metrics[("contactq_requests_total", tuple((k, v.format(404)) for k, v in labels))] == 1
    # No bridge runs here: both replies wait in the outbox.
    assert metrics[("contactq_queue_depth", (("queue", "contactq.outbox.replies"),))] == 7
    assert metrics[("contactq_queue_depth", (("queue", "queue.searchContact_1_2"),))] == 0
