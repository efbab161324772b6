"""syncContact of an account with 10,000 contacts: the whole task against a raw baseline, in the same run.

Ours: apply_async of syncContact to a real worker, until its result is back (paging through the simulated WeChat,
building records with pinyin, each batch written over earlier reads only, one event per contact through kombu,
progress states, removal check).
Raw: the same 10,000 records written with pipelined HSET, and the same 10,000 events published with kombu directly.
Then, with ActiveMQ and a bridge: the same sync until a STOMP subscriber of topic.getcontact has every event, counting
events lost and doubled.

    python bench/sync_contact.py [--contacts 10000] [--runs 3]
"""

from __future__ import annotations

import os

from benchenv import BENCH_ENV

os.environ.update(BENCH_ENV)

import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import click  # noqa: E402
import redis  # noqa: E402
import stomp  # noqa: E402
from kombu import Connection, Producer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contactq.settings import get_settings  # noqa: E402
from protocol.fixture import Account, Fixture, Friendship, Person  # noqa: E402
from protocol.records import contact_record  # noqa: E402
from protocol.simulated import SimulatedWeChat  # noqa: E402
from tasks import app, submit  # noqa: E402
from tasks.messages import announcement  # noqa: E402
from tasks.outbox import Outbox  # noqa: E402
from tasks.store import BATCH, contact_key  # noqa: E402
from tests.bridge.conftest import BridgeProcess  # noqa: E402
from tests.stack import Worker  # noqa: E402

settings = get_settings()

UIN, WXID = "3150109773", "wxid_bench0000000001"
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
GIVEN = ["小明", "淑萍", "建国", "丽丽", "Nicole", "大伟", "晓东", "Amy", "子涵", "一鸣", "乐乐", "重庆"]


def fixture(contacts: int) -> Fixture:
    people = [
        Person(
            wxid=f"wxid_bench{n:010d}",
            nickname=f"{SURNAMES[n % len(SURNAMES)]}{GIVEN[n % len(GIVEN)]}{n}",
            alias=f"bench_{n}",
            sex=n % 3,
        )
        for n in range(2, contacts + 2)
    ]
    account = Account(uin=UIN, wxid=WXID, server_id=1, child_id=1, loginer=18, nickname="压测号")
    friends = [
        Friendship(account=WXID, friend=p.wxid, remark="备注" if n % 5 == 0 else "") for n, p in enumerate(people)
    ]
    return Fixture(accounts=[account], people=people, friendships=friends)


def drain(r: redis.Redis, queue: str) -> int:
    """Empty the bridge's outbound queue between runs; returns how many events it held."""
    held = int(r.llen(queue))
    r.delete(queue)
    return held


def ours(store: redis.Redis, broker: redis.Redis) -> float:
    store.delete(contact_key(UIN, WXID))
    start = time.perf_counter()
    reply = submit("syncContact", {"loginer": 18, "uin": UIN}, server_id=1, child_id=1).get(timeout=600)
    elapsed = time.perf_counter() - start
    assert reply["status"] == 0, reply
    return elapsed


def raw(store: redis.Redis, records: list[dict[str, object]], producer: Producer) -> float:
    store.delete(contact_key(UIN, WXID))
    key = contact_key(UIN, WXID)
    events = [announcement("getcontact", UIN, WXID, 18, str(r["UserName"])).event.model_dump() for r in records]
    start = time.perf_counter()
    pipe = store.pipeline(transaction=False)
    for i in range(0, len(records), BATCH):
        pipe.hset(key, mapping={str(r["UserName"]): json.dumps(r, ensure_ascii=False) for r in records[i : i + BATCH]})
    pipe.execute()
    for body in events:
        producer.publish(body, routing_key=settings.topics["getcontact"], serializer="json", delivery_mode=2)
    return time.perf_counter() - start


class TopicCount(stomp.ConnectionListener):  # type: ignore[misc]
    """Events arriving on an ActiveMQ topic: how many, and how many distinct contacts."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.changed = threading.Condition()

    def on_message(self, frame: Any) -> None:
        with self.changed:
            self.fields.append(json.loads(frame.body)["field"])
            self.changed.notify_all()

    def wait(self, count: int, timeout_s: float = 600) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.fields) >= count, timeout_s):
                raise RuntimeError(f"{len(self.fields)} of {count} events")


def through_bridge(store: redis.Redis, contacts: int, runs: int) -> tuple[list[float], int, int]:
    """Seconds from apply_async until the STOMP subscriber holds every event, per run; events lost and doubled."""
    subprocess.run([str(ROOT / "scripts" / "activemq.sh"), "up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bridge = BridgeProcess()
    bridge.start()
    counted = TopicCount()
    conn = stomp.Connection12([(settings.activemq_host, settings.activemq_stomp_port)], auto_content_length=False)
    conn.set_listener("count", counted)
    conn.connect(wait=True)
    conn.subscribe(f"/topic/{settings.topics['getcontact']}", id="count", ack="auto")
    seconds, lost, doubled = [], 0, 0
    try:
        bridge.wait_connected()
        for _ in range(runs):
            counted.fields.clear()
            store.delete(contact_key(UIN, WXID))
            start = time.perf_counter()
            submit("syncContact", {"loginer": 18, "uin": UIN}, server_id=1, child_id=1).get(timeout=600)
            counted.wait(contacts)
            seconds.append(time.perf_counter() - start)
            time.sleep(1)  # anything more that comes is a double
            lost += contacts - len(set(counted.fields))
            doubled += len(counted.fields) - len(set(counted.fields))
    finally:
        conn.disconnect()
        bridge.stop()
    return seconds, lost, doubled


@click.command()
@click.option("--contacts", default=10_000, show_default=True)
@click.option("--runs", default=3, show_default=True)
def main(contacts: int, runs: int) -> None:
    store = redis.Redis.from_url(settings.store_url, decode_responses=True)
    broker = redis.Redis.from_url(settings.broker_url)
    for client in (store, broker, redis.Redis.from_url(settings.result_backend)):
        client.flushdb()
    sim = SimulatedWeChat(store, 1, [1], prefix=settings.sim_prefix, page_size=settings.sim_page_size)
    sim.load(fixture(contacts))
    records = [contact_record(raw_contact, WXID) for raw_contact in sim.contact_details(UIN, sim.contacts_of(WXID))]

    worker = Worker("bench", [1], concurrency=1)
    worker.start()
    outbox = Outbox(app, settings, store)
    try:
        worker.wait_ready()
        with Connection(settings.broker_url) as conn:
            producer = Producer(conn.channel(), exchange=outbox.exchange)
            outbox.events_queue(conn.default_channel).declare()
            ours_s, raw_s = [], []
            ours(store, broker)  # warm-up: imports, connections, pinyin tables
            drain(broker, settings.events_outbox)
            for _ in range(runs):
                ours_s.append(ours(store, broker))
                assert drain(broker, settings.events_outbox) == contacts
                raw_s.append(raw(store, records, producer))
                assert drain(broker, settings.events_outbox) == contacts
        bridged_s, lost, doubled = through_bridge(store, contacts, runs)
    finally:
        worker.stop()
    ours_rate, raw_rate = contacts / statistics.median(ours_s), contacts / statistics.median(raw_s)
    click.echo(f"syncContact, {contacts} contacts, median of {runs} runs")
    for name, seconds in (("contactq (task, end to end)", ours_s), ("raw HSET + kombu publish", raw_s)):
        median_s = statistics.median(seconds)
        click.echo(
            f"  {name:28s} {contacts / median_s:8.0f} contacts/s"
            f"  ({median_s:.2f} s; {min(seconds):.2f}-{max(seconds):.2f})"
        )
    ratios = sorted(r / o for o, r in zip(ours_s, raw_s, strict=True))
    click.echo(
        f"  ratio contactq / raw:        {ours_rate / raw_rate:8.2f}  (run by run {ratios[0]:.2f}-{ratios[-1]:.2f})"
    )
    bridged = statistics.median(bridged_s)
    click.echo(
        f"  through the bridge to a STOMP subscriber: {contacts / bridged:8.0f} contacts/s ({bridged:.2f} s; "
        f"{min(bridged_s):.2f}-{max(bridged_s):.2f}), {lost} lost, {doubled} doubled"
    )


if __name__ == "__main__":
    main()
