"""Metrics for Prometheus beyond what Flower exports: queue depths, requests, refusals, dead letters, reconnections.

Counters are kept in Redis (the contact store's database), so that every worker process and bridge adds to one
count; `contactq metrics` serves them, with the queue depths read from the Celery broker (and the replies stream's
from the store) at each scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from celery import Celery
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contactq.errors import StoreUnavailable, redis_errors
from contactq.settings import Settings
from tasks.outbox import RepliesStream
from tasks.queues import worker_queues

log = logging.getLogger(__name__)

KEY = "contactq:metrics"
_SEP = "\x1f"

# The `uin` label of a request for an account no worker of ours hosts: one label, however many such uins come.
OTHER_ACCOUNTS = "other"

# name -> (help, label names); every counter is `contactq_{name}_total`.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "requests": (
        "Requests answered, by operation, account (or `other`: an account not hosted here) and reply status.",
        ("op", "uin", "status"),
    ),
    "rate_limited": ("Requests refused by the per-account rate limit before WeChat saw them.", ("op", "uin")),
    "dead_lettered": ("Messages dead-lettered, by where they were refused.", ("source",)),
    "bridge_reconnections": ("Connections to ActiveMQ lost or refused, by bridge link.", ("link",)),
    "recovered": ("Requests the Celery broker lost, sent again by the bridge.", ("op",)),
    "callbacks": (
        "Callbacks posted by protocol servers, by type and outcome (see contactq.callbacks).",
        ("type", "outcome"),
    ),
}


def field(name: str, *labels: str) -> str:
    """A counter's field in the hash at KEY."""
    if len(labels) != len(COUNTERS[name][1]):
        raise ValueError(f"{name} takes labels {COUNTERS[name][1]}")
    return _SEP.join((name, *labels))


class Counters:
    """Cluster-wide counters: one Redis hash, a field per name and labels."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def add(self, name: str, *labels: str) -> None:
        with redis_errors("metrics"):
            self.r.hincrby(KEY, field(name, *labels), 1)

    def add_or_log(self, name: str, *labels: str) -> None:
        """Count one where a count lost is better than failing the caller: Redis may be what is down."""
        try:
            self.add(name, *labels)
        except StoreUnavailable as e:
            log.warning("%s not counted: %s", " ".join((name, *labels)), e)

    def read(self) -> dict[str, dict[tuple[str, ...], int]]:
        counts: dict[str, dict[tuple[str, ...], int]] = {name: {} for name in COUNTERS}
        for field, value in self.r.hgetall(KEY).items():
            name, *labels = str(field).split(_SEP)
            if name in counts:
                counts[name][tuple(labels)] = int(value)
        return counts


def queue_depths(app: Celery, settings: Settings) -> dict[str, int]:
    """Messages waiting in every request queue of the deployment and in the outboxes; 0 for one not yet declared."""
    names = [q for server, children in settings.servers.items() for q in worker_queues(server, children)]
    names += [settings.events_outbox, settings.deadletter_queue]
    depths = {}
    with app.connection_for_read() as conn:
        channel: Any = conn.channel()  # the stubs know no queue_declare on a channel
        for name in names:
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except conn.channel_errors:
                depths[name] = 0
                channel = conn.channel()  # a refused passive declare closes the channel on RabbitMQ
    return depths


class ContactqCollector(Collector):
    def __init__(self, app: Celery, settings: Settings, counters: Counters) -> None:
        self.app = app
        self.settings = settings
        self.counters = counters
        self.replies = RepliesStream(counters.r, settings.replies_outbox)

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("contactq_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        for name, count in queue_depths(self.app, self.settings).items():
            depth.add_metric([name], count)
        depth.add_metric([self.replies.key], self.replies.depth())
        yield depth
        for name, samples in self.counters.read().items():
            doc, labels = COUNTERS[name]
            family = CounterMetricFamily(f"contactq_{name}", doc, labels=list(labels))
            for values, count in sorted(samples.items()):
                family.add_metric(list(values), count)
            yield family


def serve(app: Celery, settings: Settings) -> None:
    counters = Counters(redis.Redis.from_url(settings.store_url, decode_responses=True))
    REGISTRY.register(ContactqCollector(app, settings, counters))
    start_http_server(settings.metrics_port, addr=settings.metrics_address)
    while True:
        time.sleep(3600)
