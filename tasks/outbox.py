"""The one place that publishes: replies, topic events and dead letters, into the Celery broker.

Events go to a kombu topic exchange (routing key = topic name), where any Python consumer may bind. The bridge's
outbound queues are declared, and bound to every configured topic, by each publisher before its first message: on
kombu's Redis transport a message whose routing key matches no binding is dropped without a word.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from celery import Celery
from kombu import Exchange, Queue, binding
from kombu.exceptions import BatchPublishError, OperationalError  # type: ignore[attr-defined]  # new in kombu 5.7
from pydantic import BaseModel

from contactq.errors import StoreUnavailable
from contactq.settings import Settings
from tasks import plainjson
from tasks.messages import Announcement, DeadLetter, OutboxReply


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


class Outbox:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.topics = settings.topics
        self.exchange = events_exchange(settings)
        self.events_queue = Queue(
            settings.events_outbox,
            bindings=[binding(self.exchange, routing_key=topic) for topic in settings.topics.values()],
            durable=True,
        )
        self.replies_queue = Queue(settings.replies_outbox, Exchange(settings.replies_outbox), settings.replies_outbox)
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

    def publish_reply(self, queue_name: str, correlation_id: str, body: dict[str, Any]) -> None:
        """A reply for the bridge to send to the request's `queueName`."""
        self._publish(self.replies_queue, OutboxReply(queueName=queue_name, correlationId=correlation_id, reply=body))

    def dead_letter(self, task: str, queue: str, request: Any, status: int, reason: str) -> None:
        """A request that could not be done; replay it by sending `request` to `task` on `queue` again."""
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
