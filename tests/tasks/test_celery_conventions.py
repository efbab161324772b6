"""Celery's own conventions hold: `celeryconfig` is a settings module, `celery -A tasks ...` works from the repository
and from the installed package, every task says what it does, and routing a request builds no WeChat client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import amqp
import pytest
import redis

from tasks import app
from tasks.queues import OPERATIONS, PUSHED_CHANGE
from tests.brokers import BROKER
from tests.stack import ACCOUNT_A, ROOT, Stack, Worker, caller_app

A = ACCOUNT_A
CELERY = [sys.executable, "-m", "celery"]


def python(code: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_celeryconfig_is_a_settings_module_derived_from_the_settings() -> None:
    out = python(
        "import celeryconfig as c, json; print(json.dumps([c.broker_url, c.worker_concurrency, c.task_acks_late,"
        " sorted(q.name for q in c.task_queues)]))",
        env={"CONTACTQ_SERVER_ID": "3", "CONTACTQ_CHILD_IDS": "4", "CONTACTQ_WORKER_AUTOSCALE_MAX": "6"},
    )
    broker, concurrency, acks_late, queues = json.loads(out)
    assert (broker, concurrency, acks_late) == (os.environ["CONTACTQ_BROKER_URL"], 6, True)
    assert queues == sorted(f"queue.{op}_3_4" for op in (*OPERATIONS, PUSHED_CHANGE))


def test_every_task_says_what_it_does() -> None:
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.startswith("contactq.")}
    assert sorted(ours) == sorted(f"contactq.{op}" for op in (*OPERATIONS, PUSHED_CHANGE))
    for name, task in ours.items():
        assert task.__doc__ and len(task.__doc__) > 40, name


def test_celery_inspect_registered_from_the_repository_and_the_installed_package(stack: Stack, tmp_path: Path) -> None:
    for cwd in (ROOT, tmp_path):  # tmp_path: no checkout on the path, only the installed package
        done = subprocess.run(
            [*CELERY, "-A", "tasks", "inspect", "registered", "--json", "-t", "5"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        registered = json.loads(done.stdout)
        for tasks in registered.values():
            assert {f"contactq.{op}" for op in OPERATIONS} <= set(tasks)


def test_celery_worker_on_one_queue(stack: Stack, own_broker: str) -> None:
    """`celery -A tasks worker -Q queue.searchContact_1_1`, as a Celery user starts one, consumes that queue only."""
    worker = Worker("one-queue", [1], {"CONTACTQ_BROKER_URL": own_broker}, pool_args=("-Q", "queue.searchContact_1_1"))
    worker.start()
    try:
        worker.wait_ready()
        caller = caller_app(own_broker)
        [queues] = caller.control.inspect(destination=[worker.hostname], timeout=5).active_queues().values()
        assert [q["name"] for q in queues] == ["queue.searchContact_1_1"]
        request = {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": "q"}
        found = caller.send_task("contactq.searchContact", args=[request], queue="queue.searchContact_1_1")
        assert found.get(timeout=20)["nick_name"] == "运营二号"
    finally:
        worker.stop()


def test_routing_a_request_builds_no_wechat_client(stack: Stack) -> None:
    """`contactq --help`, `submit()` by uin and `contactq watch` never seed the simulated WeChat: a fresh simulation
    prefix stays empty."""
    prefix = f"simwx-untouched-{uuid.uuid4().hex[:8]}:"
    env = {"CONTACTQ_SIM_PREFIX": prefix}
    contactq = str(Path(sys.executable).parent / "contactq")
    assert subprocess.run([contactq, "--help"], env={**os.environ, **env}, capture_output=True).returncode == 0
    task_id = python(
        f"from tasks import submit\nprint(submit('syncContact', {{'loginer': 18, 'uin': '{A['uin']}'}}).id)",
        env=env,
    ).strip()
    assert stack.app.AsyncResult(task_id).get(timeout=20)["status"] == 0  # routed by uin, done by A's worker
    watch = subprocess.Popen([contactq, "watch", "--count", "1"], env={**os.environ, **env}, stdout=subprocess.PIPE)
    try:
        time.sleep(2)  # what it would build, it builds at start
    finally:
        watch.terminate()
        watch.wait(timeout=10)
    assert list(redis.Redis.from_url(stack.settings.sim_url).scan_iter(match=f"{prefix}*")) == []


@pytest.mark.skipif(BROKER != "rabbitmq", reason="Redis has no publisher confirms: a command returns once it is done")
def test_a_publish_to_rabbitmq_returns_once_rabbitmq_has_it() -> None:
    # RabbitMQ's answer to a publish comes back to the publisher: here a refusal (no such exchange), which an
    # unconfirmed publish would not wait for, returning before RabbitMQ has seen the message.
    with app.connection_for_write() as conn, pytest.raises(amqp.exceptions.NotFound):
        conn.Producer().publish({}, exchange="contactq.no-such-exchange", routing_key="x", retry=False)
