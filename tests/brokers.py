"""The Celery broker the end-to-end tests run on: Redis (default) or RabbitMQ, chosen by CONTACTQ_TEST_BROKER."""

from __future__ import annotations

import os
import subprocess

import redis

BROKER = os.environ.get("CONTACTQ_TEST_BROKER", "redis")
if BROKER not in ("redis", "rabbitmq"):
    raise ValueError(f"CONTACTQ_TEST_BROKER is redis or rabbitmq, not {BROKER!r}")


def broker_url(isolated: str = "") -> str:
    """The tests' broker; an `isolated` one (named by the caller) is one no session worker consumes from.

    On RabbitMQ each isolated broker is a vhost of its own: deleting a vhost closes every connection to it, while kombu
    keeps producers per broker URL for the whole process (Celery's control commands use them), so a vhost's name is
    never used again.
    """
    if BROKER == "rabbitmq":
        return f"amqp://guest:guest@127.0.0.1:5672/contactq-test{'-' + isolated if isolated else ''}"
    return f"redis://127.0.0.1:6379/{6 if isolated else 7}"


def drop(url: str) -> None:
    """Leave nothing of the broker behind `url`."""
    if url.startswith("redis://"):
        redis.Redis.from_url(url).flushdb()
    else:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", url.rsplit("/", 1)[1]], capture_output=True)


def empty(url: str) -> None:
    """Make the broker behind `url` exist and hold nothing."""
    drop(url)
    if url.startswith("redis://"):
        return
    vhost = url.rsplit("/", 1)[1]
    for command in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True)
