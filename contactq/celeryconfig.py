"""Celery's settings for contactq, derived from the one `Settings` object."""

from __future__ import annotations

from typing import Any

from contactq.settings import Settings
from contactq.tasks.queues import celery_queue, worker_queues


def from_settings(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": _transport_options(settings),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Acknowledged after the reply is out; a worker that dies mid-task gives the message back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_queues": [celery_queue(q) for q in worker_queues(settings.server_id, settings.child_ids)],
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "result_extended": True,
        "result_expires": 24 * 3600,
    }


def _transport_options(settings: Settings) -> dict[str, Any]:
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        # RabbitMQ gives a dead worker's messages back as soon as its connection closes: nothing to tune.
        return {}
    # Redis: a message a dead worker held comes back after visibility_timeout; the sweep that restores it runs
    # every unacked_restore_interval (throttle 1: every run scans). No task may outlive the timeout.
    return {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": settings.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": settings.unacked_mutex_expire_s,
    }
