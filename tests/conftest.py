"""The test stack: the real Redis on 127.0.0.1:6379 (databases 6-9), the Celery broker on Redis or RabbitMQ
(tests/brokers.py), and real Celery worker processes, one per protocol-server child, started once per session."""

from __future__ import annotations

import os
import uuid

from tests.brokers import broker_url, drop, empty
from tests.servers import gewe_accounts_json

# Before contactq is imported: its settings are read once, at import.
TEST_ENV = {
    "CONTACTQ_BROKER_URL": broker_url(),
    "CONTACTQ_RESULT_BACKEND": "redis://127.0.0.1:6379/8",
    "CONTACTQ_STORE_URL": "redis://127.0.0.1:6379/9",
    "CONTACTQ_SIM_URL": "redis://127.0.0.1:6379/9",
    "CONTACTQ_SERVER_ID": "1",
    "CONTACTQ_CHILD_IDS": "1,2",
    "CONTACTQ_MAX_RETRIES": "3",
    "CONTACTQ_RETRY_BACKOFF_MAX_S": "1",
    "CONTACTQ_PUSH_BLOCK_MS": "200",
    "CONTACTQ_SIM_PAGE_SIZE": "500",
    # Small batches, so that every sync in the tests goes through several, with progress between them.
    "CONTACTQ_SYNC_DETAIL_BATCH": "5",
    # A request the broker lost is looked for after 2 s, not 30.
    "CONTACTQ_LEDGER_OVERDUE_S": "2",
}
# CONTACTQ_TEST_PROTOCOL=gewe: the workers reach the simulated WeChat over the Gewechat HTTP API (`contactq sim
# serve`), and its callbacks come back through `contactq callbacks`.
GEWE = os.environ.get("CONTACTQ_TEST_PROTOCOL") == "gewe"
if GEWE:
    from tests.servers import free_port

    SIM_PORT, CALLBACKS_PORT = free_port(), free_port()
    TEST_ENV |= {
        "CONTACTQ_PROTOCOL": "gewe",
        "CONTACTQ_GEWE_BASE_URL": f"http://127.0.0.1:{SIM_PORT}/v2/api",
        "CONTACTQ_GEWE_TOKEN": "test-token",
        "CONTACTQ_GEWE_ACCOUNTS": gewe_accounts_json(),
        "CONTACTQ_CALLBACKS_PORT": str(CALLBACKS_PORT),
        "CONTACTQ_CALLBACKS_SECRET": "test-secret",
    }
os.environ.update(TEST_ENV)
os.environ.pop("CONTACTQ_CONFIG", None)

from collections.abc import Iterator  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402

from tests.servers import Service  # noqa: E402
from tests.stack import Stack, Worker  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Pure unit tests first: a broken transformation shows before the slower stack tests.
    items.sort(key=lambda item: "stack" in item.fixturenames)


@pytest.fixture(scope="session")
def gewe_server() -> Iterator[None]:
    """With CONTACTQ_TEST_PROTOCOL=gewe: the served simulation and the callbacks endpoint it posts to."""
    if not GEWE:
        yield
        return
    served = Service("sim-serve", ["sim", "serve", "--port", str(SIM_PORT)], SIM_PORT)
    callbacks = Service("callbacks", ["callbacks"], CALLBACKS_PORT)
    try:
        served.start()
        callbacks.start()
        answer = httpx.post(
            f"{served.url}/v2/api/tools/setCallback",
            json={"callbackUrl": f"{callbacks.url}/callbacks/{TEST_ENV['CONTACTQ_CALLBACKS_SECRET']}"},
            headers={"X-GEWE-TOKEN": TEST_ENV["CONTACTQ_GEWE_TOKEN"]},
        )
        assert answer.json()["ret"] == 200, answer.text
        yield
    finally:
        served.stop()
        callbacks.stop()


@pytest.fixture(scope="session")
def workers(gewe_server: None) -> Iterator[list[Worker]]:
    empty(TEST_ENV["CONTACTQ_BROKER_URL"])
    started = [Worker("child1", [1]), Worker("child2", [2])]
    for worker in started:
        worker.start()
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope="session")
def session_stack(workers: list[Worker]) -> Iterator[Stack]:
    stack = Stack()
    yield stack
    stack.close()


@pytest.fixture
def stack(session_stack: Stack) -> Stack:
    """The running stack, reset to the default fixture before each test."""
    session_stack.reset()
    return session_stack


@pytest.fixture
def own_broker() -> Iterator[str]:
    """A broker of the test's own (a Redis database or a RabbitMQ vhost) that no session worker consumes from."""
    url = broker_url(isolated=uuid.uuid4().hex[:8])
    empty(url)
    yield url
    drop(url)


@pytest.fixture
def store_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_ENV["CONTACTQ_STORE_URL"], decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.faults import RESULTS, table

    if RESULTS:
        terminalreporter.section("fault figures")
        for line in table():
            terminalreporter.write_line(line)
