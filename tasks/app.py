"""The Celery application: configured from `celeryconfig`, per-process resources built lazily, and secrets kept out
of Flower and logs.

`celery -A tasks worker` finds `app` here; nothing connects or builds a WeChat client until a worker or a caller needs
it.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from typing import Any

from celery import Celery, Task, bootsteps
from celery.signals import after_setup_logger, after_setup_task_logger, before_task_publish, worker_ready
from celery.utils.saferepr import saferepr
from celery.worker.request import Request as CeleryRequest

from contactq.errors import ContactqError
from contactq.settings import get_settings
from protocol.client import load_client
from tasks.messages import mask
from tasks.plainjson import register_serializer
from tasks.push import PushForwarder
from tasks.runtime import Runtime

OPERATION_MODULES = [
    "tasks.get_contact",
    "tasks.search_contact",
    "tasks.add_contact",
    "tasks.add_new",
    "tasks.sync_contact",
    "tasks.modify_name",
    "tasks.add_chatroom_contact",
    "tasks.pushed_change",
]


def import_operations() -> None:
    """Import every operation module, so that `tasks.operation.SPECS` knows them all (a worker imports them itself)."""
    for module in OPERATION_MODULES:
        importlib.import_module(module)


register_serializer()  # before any message is encoded or decoded in this process
app = Celery("contactq", include=OPERATION_MODULES, task_cls="tasks.app:ContactqTask")
app.config_from_object("celeryconfig")

log = logging.getLogger(__name__)
_REGISTER_MAX_DELAY_S = 30.0

_runtimes: dict[int, Runtime] = {}
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime; a forked pool process builds its own connections."""
    pid = os.getpid()
    with _runtime_lock:
        if pid not in _runtimes:
            _runtimes.clear()
            _runtimes[pid] = Runtime(app, get_settings())
        return _runtimes[pid]


class MaskedRequest(CeleryRequest):
    """Task events (what Flower shows) and the worker's logs carry arguments and results with the secrets masked,
    whoever sent the task."""

    @property
    def argsrepr(self) -> str:
        return mask(super().argsrepr)

    @property
    def kwargsrepr(self) -> str:
        return mask(super().kwargsrepr)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft and self.name.startswith("contactq."):
            # The pool process is being killed mid-task: the request is answered and dead-lettered from here instead,
            # before the message is acknowledged.
            from tasks.operation import answer_killed  # the operations import this module

            queue = str((self.delivery_info or {}).get("routing_key", ""))
            try:
                answer_killed(self.name, self.id, queue, self.args, f"killed at the hard time limit of {timeout:g} s")
            except Exception:
                log.exception("could not answer %s, killed at its hard time limit", self.id)
        super().on_timeout(soft, timeout)

    def send_event(self, type: str, **fields: Any) -> None:
        for name in ("args", "kwargs", "result"):
            if isinstance(fields.get(name), str):
                fields[name] = mask(fields[name])
        super().send_event(type, **fields)


class ContactqTask(Task[Any, Any]):
    """Every contactq task: arguments masked wherever they are shown."""

    Request = "tasks.app:MaskedRequest"

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        return super().apply_async(args, kwargs, **{**masked_reprs(args, kwargs), **options})


def masked_reprs(args: Any, kwargs: Any) -> dict[str, str]:
    """argsrepr and kwargsrepr for sending a task. The sender's own task-sent event is built before any signal
    could change it, so arguments are masked at the source."""
    return {"argsrepr": mask(saferepr(args or ())), "kwargsrepr": mask(saferepr(kwargs or {}))}


@before_task_publish.connect
def _mask_published(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Callers that send by name (send_task) still get masked arguments in the worker's events and logs.
    if headers:
        for name in ("argsrepr", "kwargsrepr"):
            if isinstance(headers.get(name), str):
                headers[name] = mask(headers[name])


class MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = ()
        return True


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    if logger is not None:
        for handler in logger.handlers:
            handler.addFilter(MaskSecrets())


@worker_ready.connect
def _register_accounts(**_: Any) -> None:
    # Routing by uin (`queue.{op}_{S}`) reads the registry. Celery only logs what a signal handler raises, so a Redis
    # away at start would leave the accounts unregistered until a restart: tried again in the background instead.
    rt = runtime()
    if not _register(rt):
        threading.Thread(target=register_until_done, args=(rt,), name="register-accounts", daemon=True).start()


def _register(rt: Runtime) -> bool:
    try:
        for child in rt.settings.child_ids:
            rt.registry.register(rt.client.sessions(child))
    except ContactqError as e:
        log.warning("the accounts of children %s are not registered yet: %s", rt.settings.child_ids, e)
        return False
    return True


def register_until_done(rt: Runtime, delay_s: float = 1.0) -> None:
    """Register this worker's accounts, trying again with a growing pause until Redis takes them."""
    while not _register(rt):
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, _REGISTER_MAX_DELAY_S)
    log.info("the accounts of children %s are registered", rt.settings.child_ids)


class PushListener(bootsteps.StartStopStep):
    """Forwards the changes WeChat pushes to the worker's accounts onto their children's pushedChange queues."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._join_s = 0.0

    def start(self, parent: Any) -> None:
        settings = get_settings()
        client = load_client(settings)
        consumer = parent.hostname  # stable across restarts: a restarted worker takes up what it had not acknowledged
        self._join_s = settings.push_block_ms / 1000 + 5
        for child in settings.child_ids:
            forward = PushForwarder(app, client, child, consumer, settings.server_id, settings.push_block_ms)
            thread = threading.Thread(target=forward.run, args=(self._stop,), name=f"push-{child}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, parent: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._join_s)


app.steps["worker"].add(PushListener)
