"""A worker's start: its accounts are registered for routing by uin, even when its Redis comes only later."""

from __future__ import annotations

import threading
import time

import redis

from contactq.settings import get_settings
from tasks.app import app, register_until_done
from tasks.runtime import Runtime
from tasks.store import AccountRegistry
from tests.servers import PrivateRedis
from tests.stack import ACCOUNT_A


def test_the_accounts_are_registered_once_redis_is_there() -> None:
    private = PrivateRedis()  # its port chosen, not started yet
    url = private.url(0)
    settings = get_settings().model_copy(
        update={"store_url": url, "sim_url": url, "protocol": "simulated", "server_id": 1, "child_ids": [1]}
    )
    registering = threading.Thread(target=register_until_done, args=(Runtime(app, settings), 0.1), daemon=True)
    registering.start()
    time.sleep(1)
    assert registering.is_alive()  # no Redis yet: still trying
    private.start()
    try:
        registering.join(timeout=30)
        assert not registering.is_alive()
        session = AccountRegistry(redis.Redis(port=private.port, decode_responses=True)).lookup(ACCOUNT_A["uin"])
        assert session is not None and (session.server_id, session.child_id) == (1, 1)
    finally:
        private.stop()
