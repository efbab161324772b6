"""The Redis transport's one client per channel, on the real Redis (whatever broker the rest of the run uses)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection

from tasks.redis_transport import NAME
from tests.conftest import TEST_ENV


@pytest.fixture
def connection() -> Iterator[Connection]:
    with Connection(TEST_ENV["CONTACTQ_STORE_URL"], transport=NAME) as conn:
        yield conn


def test_a_channel_reuses_its_client(connection: Connection) -> None:
    channel = connection.default_channel
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
    channel._disconnect_pools()  # as on a lost connection: a new pool, and a client over it
    with channel.conn_or_acquire() as third:
        assert third is not first
        assert third.connection_pool is channel.pool
        assert third.ping()


def test_messages_go_through(connection: Connection) -> None:
    with connection.SimpleQueue("contactq.test.transport") as simple:
        for n in range(3):
            simple.put({"n": n})
        received = [simple.get(timeout=5) for _ in range(3)]
        for message in received:
            message.ack()
        assert [m.payload["n"] for m in received] == [0, 1, 2]
        with pytest.raises(simple.Empty):
            simple.get(block=False)
