"""The Celery broker the end-to-end tests run on: Redis (default) or RabbitMQ, chosen by CONTACTQ_TEST_BROKER."""

from __future__ import annotations

import os
import subprocess

import kombu.pools
import redis

BROKER = os.environ.get("CONTACTQ_TEST_BROKER", "redis")
if BROKER not in ("redis", "rabbitmq"):
    raise ValueError(f"CONTACTQ_TEST_BROKER is redis or rabbitmq, not {BROKER!r}")


def broker_url(isolated: bool = False) -> str:
    """The tests' broker; `isolated` is one no session worker consumes from."""
    if BROKER == "rabbitmq":
        return f"amqp://guest:guest@127.0.0.1:5672/contactq-test{'-isolated' if isolated else ''}"
    return f"redis://127.0.0.1:6379/{6 if isolated else 7}"


def empty(url: str) -> None:
    """Make the broker behind `url` exist and hold nothing."""
    if url.startswith("redis://"):
        redis.Redis.from_url(url).flushdb()
        return
    vhost = url.rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    for command in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True)
    # Deleting the vhost closed every connection to it, and kombu keeps producers per broker URL for the whole
    # process (celery's control commands use them): drop them, or the next ping writes to a closed socket.
    kombu.pools.reset()
