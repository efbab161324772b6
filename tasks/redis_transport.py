"""kombu's Redis transport, with one redis-py client per channel instead of one per command.

kombu builds a new redis-py client for every publish and every acknowledgement, and redis-py's client builds its table
of response callbacks on each construction (redis/redis-py#3624): a quarter of the bridge's CPU went there. A client
over a connection pool is safe to share, so each channel keeps one for its pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

NAME = "tasks.redis_transport:Transport"


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any | None = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool  # a new one after the channel's pools were disconnected: then a new client too
        if self._shared_client is None or self._shared_client.connection_pool is not pool:
            with super().conn_or_acquire() as created:
                self._shared_client = created
        yield self._shared_client


class Transport(kombu_redis.Transport):
    Channel = Channel
