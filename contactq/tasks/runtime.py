"""What a task needs at hand, built once per process (after the prefork pool has forked)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from contactq.protocol.client import WeChatClient, load_client
from contactq.settings import Settings
from contactq.tasks.guards import Once, RateLimiter
from contactq.tasks.metrics import Counters
from contactq.tasks.outbox import Outbox
from contactq.tasks.store import AccountRegistry, ContactStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    client: WeChatClient
    store: ContactStore
    registry: AccountRegistry
    outbox: Outbox
    limiter: RateLimiter
    once: Once
    counters: Counters

    @classmethod
    def build(cls, app: Celery, settings: Settings) -> Runtime:
        store = redis.Redis.from_url(settings.store_url, decode_responses=True)
        counters = Counters(store)
        return cls(
            settings=settings,
            client=load_client(settings),
            store=ContactStore(store),
            registry=AccountRegistry(store),
            outbox=Outbox(app, settings),
            limiter=RateLimiter(store, counters),
            once=Once(store, settings.dedupe_window_s),
            counters=counters,
        )
