"""Where replies, topic events and dead letters go: replies into a Redis stream, events and dead letters into the Celery
broker.

A reply is written by the request's answer with its answered mark, in one step (tasks.ledger.Ledger.answer), and read
by the bridges as one consumer group: an entry leaves the stream once ActiveMQ has confirmed it.

Events go to a kombu topic exchange (routing key = topic name), where any Python consumer may bind. The bridge's
outbound queues are declared, and bound to every configured topic, by each publisher before its first message: on
kombu's Redis transport a message whose routing key matches no binding is dropped without a word.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import redis
from celery import Celery
from kombu import Exchange, Queue, binding
from kombu.exceptions import BatchPublishError, OperationalError  # type: ignore[attr-defined]  # new in kombu 5.7
from pydantic import BaseModel

from contactq.errors import StoreUnavailable, redis_errors
from contactq.settings import Settings
from tasks import plainjson
from tasks.messages import MAX_DEPTH, Announcement, DeadLetter, OutboxReply, echoable, nested_beyond


@contextmanager
def _broker_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, redis.RedisError, BatchPublishError) as e:
        # Away, or refusing writes (a Redis broker out of memory answers OOM): worth another try either way.
        raise StoreUnavailable(f"Celery broker unavailable: {e}") from e


# A broker that stays away raises, for the task's own retries to take over, instead of blocking the worker for ever.
RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 2}


def events_exchange(settings: Settings) -> Exchange:
    return Exchange(settings.events_exchange, type="topic", durable=True)


# The group's consumers that hold nothing and were idle longer than ARGV[1] ms, but ARGV[3]: deleted, in one step so
# that none takes an entry between the look and the delete. Returns how many.
_FORGET_IDLE = """
local gone = 0
for _, row in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[2])) do
  local c = {}
  for i = 1, #row, 2 do c[row[i]] = row[i + 1] end
  if c['pending'] == 0 and c['idle'] > tonumber(ARGV[1]) and c['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[2], c['name'])
    gone = gone + 1
  end
end
return gone
"""


class Taken(NamedTuple):
    """An entry of the replies stream: its id, and its reply (None when the entry is not one we wrote)."""

    id: str
    reply: OutboxReply | None
    raw: str


class RepliesStream:
    """The replies outbox: `XADD`ed by the tasks, read by the bridges' consumer group, acknowledged and deleted once
    sent. An entry read by a bridge that died is claimed by another after `orphan_idle_s`."""

    GROUP = "contactq-bridge"
    FIELD = "reply"

    def __init__(self, client: redis.Redis, key: str, orphan_idle_s: float = 60.0) -> None:
        self.r = client
        self.key = key
        self.orphan_idle_ms = int(orphan_idle_s * 1000)
        self._grouped = False
        self._forget_idle = client.register_script(_FORGET_IDLE)

    @staticmethod
    def encode(reply: OutboxReply) -> str:
        """An entry's `FIELD`, as the answer writes it (tasks.ledger.Ledger.answer)."""
        return plainjson.dumps(reply.model_dump(mode="json"))

    def take(self, consumer: str, count: int, block_ms: int, again: bool = False) -> list[Taken]:
        """New entries for `consumer`, up to `count`, waiting up to `block_ms` for one; with `again`, first the ones
        it took and did not finish (which it must no longer hold in flight), then orphans of bridges gone."""
        with redis_errors("replies outbox"):
            self._ensure_group()
            try:
                if again:
                    found = self._read(consumer, "0", count, None)
                    if not found:
                        found = self.r.xautoclaim(self.key, self.GROUP, consumer, self.orphan_idle_ms, count=count)[1]
                    if found:
                        return [self._taken(entry_id, fields) for entry_id, fields in found]
                found = self._read(consumer, ">", count, block_ms)
                return [self._taken(entry_id, fields) for entry_id, fields in found]
            except redis.ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                self._grouped = False  # the stream was deleted (a reset): the group is made again next time
                return []

    def done(self, ids: Sequence[str]) -> None:
        """Sent: out of the group's pending entries and out of the stream, in one transaction."""
        if ids:
            with redis_errors("replies outbox"):
                self.r.pipeline(transaction=True).xack(self.key, self.GROUP, *ids).xdel(self.key, *ids).execute()

    def forget_idle(self, consumer: str) -> int:
        """Consumers of bridges gone, once their entries were taken by others (each bridge process is a consumer of
        its own): deleted when they hold nothing and were idle past the orphan time. `consumer` is kept."""
        with redis_errors("replies outbox"):
            try:
                return int(self._forget_idle(keys=[self.key], args=[self.orphan_idle_ms, self.GROUP, consumer]))
            except redis.ResponseError:
                return 0  # no stream or no group yet (a reset): nobody to forget

    def depth(self) -> int:
        """Replies not yet confirmed by ActiveMQ."""
        with redis_errors("replies outbox"):
            return int(self.r.xlen(self.key))

    def _read(self, consumer: str, start: str, count: int, block_ms: int | None) -> list[Any]:
        found = self.r.xreadgroup(self.GROUP, consumer, {self.key: start}, count=count, block=block_ms)
        return list(found[0][1]) if found else []

    def _taken(self, entry_id: str, fields: dict[str, str] | None) -> Taken:
        raw = (fields or {}).get(self.FIELD, "")
        try:
            # The standard library's decoder: pydantic's refuses a lone surrogate, which a request may carry.
            return Taken(entry_id, OutboxReply.model_validate(plainjson.loads(raw)), raw)
        except ValueError:
            return Taken(entry_id, None, raw or repr(fields))

    def _ensure_group(self) -> None:
        if self._grouped:
            return
        try:
            self.r.xgroup_create(self.key, self.GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._grouped = True


class Outbox:
    def __init__(self, app: Celery, settings: Settings, store: redis.Redis) -> None:
        self.app = app
        self.topics = settings.topics
        self.exchange = events_exchange(settings)
        self.events_queue = Queue(
            settings.events_outbox,
            bindings=[binding(self.exchange, routing_key=topic) for topic in settings.topics.values()],
            durable=True,
        )
        self.replies = RepliesStream(store, settings.replies_outbox, settings.bridge_orphan_idle_s)
        self.deadletter_queue = Queue(
            settings.deadletter_queue, Exchange(settings.deadletter_queue), settings.deadletter_queue
        )

    def publish_events(self, announcements: Sequence[Announcement]) -> None:
        """Publish a batch of events over one producer; the exchange and the bridge's queue are declared first.

        On Redis the messages go out in one pipeline (kombu's publish batch) once routed; a batch that fails is
        published again whole by the task's retry: at least once.
        """
        if not announcements:
            return
        with _broker_errors(), self.app.producer_or_acquire() as producer, producer.batch():
            producer.maybe_declare(self.exchange)
            producer.maybe_declare(self.events_queue)
            for a in announcements:
                producer.publish(
                    a.event.model_dump(),
                    exchange=self.exchange,
                    routing_key=self.topics[a.kind],
                    serializer=plainjson.NAME,
                    delivery_mode=2,
                    retry=True,
                    retry_policy=RETRY_POLICY,
                )

    def dead_letter(self, task: str, queue: str, request: Any, status: int, reason: str) -> None:
        """A request that could not be done; replay it by sending `request` to `task` on `queue` again. One nested
        beyond reason is kept as what can be written of it."""
        if nested_beyond(request, MAX_DEPTH):
            request = echoable(request) if isinstance(request, Mapping) else f"nested deeper than {MAX_DEPTH} levels"
        self._publish(
            self.deadletter_queue, DeadLetter(task=task, queue=queue, request=request, status=status, reason=reason)
        )

    def _publish(self, queue: Queue, message: BaseModel) -> None:
        # On the default exchange, straight to the queue by name: no routing table to read for each message.
        with _broker_errors(), self.app.producer_or_acquire() as producer:
            producer.publish(
                message.model_dump(mode="json"),
                exchange="",
                routing_key=queue.name,
                declare=[queue],
                serializer=plainjson.NAME,
                delivery_mode=2,
                retry=True,
                retry_policy=RETRY_POLICY,
            )
