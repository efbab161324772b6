"""Workers autoscale, as the user's card says: `contactq worker` runs Celery's autoscaler between the settings' min and
max; a burst of slow requests grows the pool to its maximum, and it shrinks back once idle."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import Celery

from tests.stack import ACCOUNT_A, ROOT, Stack, caller_app

A = ACCOUNT_A


def pool_size(caller: Celery, hostname: str) -> tuple[int, int, int]:
    """(pool processes now, the autoscaler's min and max), as `celery inspect stats` reports them."""
    stats: dict[str, Any] = (caller.control.inspect(destination=[hostname], timeout=2).stats() or {}).get(hostname, {})
    autoscaler = stats.get("autoscaler", {})
    return len(stats.get("pool", {}).get("processes", [])), autoscaler.get("min", 0), autoscaler.get("max", 0)


def test_a_burst_grows_the_pool_to_its_maximum_and_idle_shrinks_it(stack: Stack, own_broker: str) -> None:
    env = {
        **os.environ,
        "CONTACTQ_BROKER_URL": own_broker,
        "CONTACTQ_CHILD_IDS": "1",
        "CONTACTQ_WORKER_AUTOSCALE_MAX": "4",
        "CONTACTQ_WORKER_AUTOSCALE_MIN": "1",
        "AUTOSCALE_KEEPALIVE": "2",  # Celery's: how long a grown pool stays up once idle (30 s by default)
    }
    hostname = f"contactq-1-1@{socket.gethostname()}"
    log = Path(tempfile.mkstemp(prefix="contactq-autoscale-", suffix=".log")[1])
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "contactq"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    caller = caller_app(own_broker)
    try:
        deadline = time.monotonic() + 60
        while not caller.control.ping(destination=[hostname], timeout=0.5):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        assert pool_size(caller, hostname) == (1, 1, 4)

        stack.sim.set_faults(latency_ms=1500)
        request = {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": "q"}
        results = [
            caller.send_task("contactq.searchContact", args=[request], queue="queue.searchContact_1_1")
            for _ in range(12)
        ]
        grown = 0
        while not all(r.ready() for r in results):
            grown = max(grown, pool_size(caller, hostname)[0])
            assert time.monotonic() < deadline + 60, f"burst not done; pool grew to {grown}"
        assert [r.get(timeout=1)["status"] for r in results] == [0] * 12
        assert grown == 4

        stack.sim.set_faults()
        shrunk_by = time.monotonic() + 30
        while pool_size(caller, hostname)[0] > 1:
            assert time.monotonic() < shrunk_by, "the pool did not shrink back once idle"
            time.sleep(0.5)
    finally:
        stack.sim.set_faults()
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
