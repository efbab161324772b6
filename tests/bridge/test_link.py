"""A STOMP link keeps reconnecting whatever else fails: here the Redis its reconnections are counted in is gone (a
Redis out of memory refuses the count the same way)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from bridge.link import Link
from contactq.settings import get_settings
from tasks.metrics import Counters
from tests.servers import free_port


def counters_nowhere() -> Counters:
    return Counters(redis.Redis(port=free_port(), socket_connect_timeout=0.5))


def run(link: Link) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=link.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def test_a_link_to_no_activemq_keeps_trying_while_its_count_cannot_be_written(caplog: pytest.LogCaptureFixture) -> None:
    settings = get_settings().model_copy(update={"activemq_stomp_port": free_port(), "bridge_reconnect_max_s": 0.2})
    thread, stop = run(Link(settings, "nowhere", counters_nowhere()))
    try:
        deadline = time.monotonic() + 30
        # Tried again after the count failed: a thread that died at the first failure would never count two.
        while caplog.text.count("bridge_reconnections nowhere not counted") < 2:
            assert thread.is_alive() and time.monotonic() < deadline, "the link stopped trying"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_dropped_link_connects_again_while_its_count_cannot_be_written(caplog: pytest.LogCaptureFixture) -> None:
    link = Link(get_settings(), "dropped", counters_nowhere())
    thread, stop = run(link)
    try:
        assert link.connected.wait(30)
        first = link.connected_at
        link.drop()
        deadline = time.monotonic() + 30
        while not (
            link.connected.is_set()
            and link.connected_at > first
            and "bridge_reconnections dropped not counted" in caplog.text
        ):
            assert time.monotonic() < deadline, f"the link did not connect again:\n{caplog.text}"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
