"""Flower beside the workers: behind basic auth, every task with its queue, and no friend-request secret shown."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import ACCOUNT_A, ROOT, Stack, Worker

A = ACCOUNT_A


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def flower(session_stack: Stack) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CONTACTQ_FLOWER_PORT": str(port),
        "CONTACTQ_FLOWER_USER": "ops",
        "CONTACTQ_FLOWER_PASSWORD": "s3cret",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "contactq.cli", "flower"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Ready once it knows both workers: by then it is receiving their events.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, workers = get(f"{url}/api/workers?refresh=1", auth=("ops", "s3cret"))
                if status == 200 and len(workers) >= 2:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def tasks(url: str) -> dict[str, Any]:
    status, body = get(f"{url}/api/tasks", auth=("ops", "s3cret"))
    assert status == 200
    return dict(body)


def test_flower_shows_tasks_with_queues_and_masks_secrets(stack: Stack, flower: str, workers: list[Worker]) -> None:
    assert get(f"{flower}/api/tasks")[0] == 401
    assert get(f"{flower}/api/tasks", auth=("ops", "wrong"))[0] == 401

    found = stack.submit(
        "searchContact", {"adminUserId": 18, "uin": A["uin"], "userName": "xiaolongnv", "queueName": "q"}
    )
    reply = found.get(timeout=20)
    added = stack.submit(
        "addContact",
        {
            "adminUserId": 18,
            "uin": A["uin"],
            "userName": "xiaolongnv",
            "v1": reply["user_name"],
            "v2": reply["stranger"],
            "verify": "hi",
            "type": 3,
            "queueName": "q",
        },
    )
    assert added.get(timeout=20)["status"] == 0

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = tasks(flower)
        if all(seen.get(r.id, {}).get("state") == "SUCCESS" for r in (found, added)):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"Flower did not show both tasks as done: {sorted(seen)}")
    search, add = seen[found.id], seen[added.id]
    assert (search["name"], search["routing_key"]) == ("contactq.searchContact", "queue.searchContact_1_1")
    assert (add["name"], add["routing_key"]) == ("contactq.addContact", "queue.addContact_1_1")
    assert add["worker"].startswith("child1@")
    shown = search["result"] + add["args"] + add["result"] + workers[0].log()
    for secret in (reply["user_name"], reply["stranger"], reply["user_name"][3:20], reply["stranger"][3:20]):
        assert secret not in shown
    assert "'v2': '***'" in add["args"] and "'stranger': '***'" in search["result"]
    # Flower's task-result API would read the result backend, which keeps the real reply for the caller: not there.
    status, body = get(f"{flower}/api/task/result/{found.id}", auth=("ops", "s3cret"))
    assert status == 503 and reply["stranger"] not in json.dumps(body)
