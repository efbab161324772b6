"""What a task needs at hand, built on first use in each process (after the prefork pool has forked).

Each part is made when first asked for: a caller that only routes a request (`submit`, `queue_for`) opens Redis and
never builds a WeChat client, so it never seeds the simulated WeChat.
"""

from __future__ import annotations

from functools import cached_property

import redis
from celery import Celery

from contactq.settings import Settings
from protocol.client import WeChatClient, load_client
from tasks.guards import Once, RateLimiter
from tasks.ledger import Ledger
from tasks.metrics import Counters
from tasks.outbox import Outbox
from tasks.store import AccountRegistry, ContactStore


class Runtime:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.store_url, decode_responses=True)

    @cached_property
    def client(self) -> WeChatClient:
        return load_client(self.settings)

    @cached_property
    def store(self) -> ContactStore:
        return ContactStore(self.redis)

    @cached_property
    def registry(self) -> AccountRegistry:
        return AccountRegistry(self.redis)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.app, self.settings, self.redis)

    @cached_property
    def counters(self) -> Counters:
        return Counters(self.redis)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis, self.counters)

    @cached_property
    def once(self) -> Once:
        # The lease outlasts a WeChat call that times out, and is renewed while the execution runs (Once.held): a
        # crashed worker's claim holds a copy of its request back no longer than this.
        return Once(
            self.redis, lease_s=int(self.settings.wechat_timeout_s) + 10, window_s=self.settings.dedupe_window_s
        )
