"""Celery's settings module, as Celery's docs use it: `app.config_from_object("celeryconfig")`.

Every public name here is a Celery setting, derived from contactq's one settings object (CONTACTQ_* and the optional
TOML file named by CONTACTQ_CONFIG), so a deployment configures contactq in one place.
"""

# Imported under private names: Celery takes every public name of this module for a setting.
from typing import Any as _Any

from contactq.settings import get_settings as _get_settings
from tasks.queues import celery_queue as _celery_queue
from tasks.queues import worker_queues as _worker_queues
from tasks.redis_transport import NAME as _REDIS_TRANSPORT

_settings = _get_settings()

broker_url = _settings.broker_url
result_backend = _settings.result_backend
broker_connection_retry_on_startup = True
# A broker that refuses a command (a Redis out of memory answers OOM) is reconnected to like one that went away,
# instead of ending the worker.
broker_channel_error_retry = True


def _transport_options() -> dict[str, _Any]:
    if not broker_url.startswith(("redis://", "rediss://")):
        # RabbitMQ gives a dead worker's messages back as soon as its connection closes. A publish (a task the bridge
        # then acknowledges to ActiveMQ, an event) returns once RabbitMQ confirms it has the message: unconfirmed, one
        # still on its way when RabbitMQ dies would be lost without a word.
        return {"confirm_publish": True}
    # Redis: a message a dead worker held comes back after visibility_timeout; the sweep that restores it runs
    # every unacked_restore_interval (throttle 1: every run scans). No task may outlive the timeout.
    return {
        "visibility_timeout": _settings.visibility_timeout_s,
        "unacked_restore_interval": _settings.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": _settings.unacked_mutex_expire_s,
    }


broker_transport_options = _transport_options()
if broker_url.startswith("redis://"):
    # kombu's Redis transport, less a new redis-py client for every command (tasks/redis_transport.py).
    broker_transport = _REDIS_TRANSPORT

# Requests and replies are plain JSON (tasks/plainjson.py); kombu's json is still accepted from other Celery callers.
task_serializer = "contactq-json"
result_serializer = "contactq-json"
accept_content = ["contactq-json", "json"]

# Acknowledged after the reply is out; a worker that dies mid-task gives the message back.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# Without --autoscale a worker runs the autoscaler's maximum.
worker_concurrency = _settings.worker_autoscale_max
worker_cancel_long_running_tasks_on_connection_loss = True
task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = _settings.task_soft_time_limit_s

# Exactly the queues of this worker's server and children; `celery worker -Q` picks some of them.
task_queues = [_celery_queue(q) for q in _worker_queues(_settings.server_id, _settings.child_ids)]

task_track_started = True
# The sender's event carries the task's queue for Flower. The workers' events are off unless CONTACTQ_TASK_EVENTS:
# `contactq flower` and Flower itself turn them on while they watch.
task_send_sent_event = True
worker_send_task_events = _settings.task_events
result_extended = True
result_expires = 24 * 3600
