"""Flower in a real browser: headless Chromium logs in, finds both children's workers and a finished task of every
operation with its queue, and keeps a screenshot; a wrong password is refused."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.result import AsyncResult
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from protocol.friend_request import parse_friend_request
from tests.stack import ACCOUNT_A, ROOT, Stack, Worker

UIN, WXID = str(ACCOUNT_A["uin"]), str(ACCOUNT_A["wxid"])  # account A, on child 1
USER, PASSWORD = "ops", "s3cret"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "tests" / "artifacts" / "flower-tasks.png"
# Root needs --no-sandbox; the rest keep Chromium from calling home (refused here, and noisy) and from using a GPU.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flower_workers(url: str) -> list[str]:
    request = urllib.request.Request(f"{url}/api/workers?refresh=1")
    request.add_header("Authorization", basic_auth(USER, PASSWORD))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return list(json.loads(response.read()))
    except OSError:  # not listening yet, or an HTTP error
        return []


@pytest.fixture
def flower(workers: list[Worker]) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CONTACTQ_FLOWER_PORT": str(port),
        "CONTACTQ_FLOWER_USER": USER,
        "CONTACTQ_FLOWER_PASSWORD": PASSWORD,
    }
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "contactq.cli", "flower"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            # Ready once it knows both workers: by then it is receiving their task events.
            deadline = time.monotonic() + 30
            while len(flower_workers(url)) < len(workers):
                if time.monotonic() > deadline or proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"Flower did not see both workers:\n{log.read().decode()[-3000:]}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):  # installed here rather than skipped
        subprocess.run([ROOT / "scripts" / "ensure-chromium.sh"], check=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # The performance log carries each response's status: how a refused login is told from an empty page.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    with tempfile.TemporaryDirectory(prefix="contactq-chromium-") as profile:
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        # An explicit driver path: Selenium Manager then downloads nothing.
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            yield driver
        finally:
            driver.quit()


def log_in(driver: WebDriver, user: str, password: str) -> None:
    """Basic auth on every request the page makes, its AJAX included; headless Chromium shows no login dialog."""
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": basic_auth(user, password)}})


def devtools_events(driver: WebDriver) -> list[dict[str, Any]]:
    """The DevTools events logged since the last call."""
    entries: list[dict[str, Any]] = driver.get_log("performance")  # type: ignore[no-untyped-call]
    return [json.loads(entry["message"])["message"] for entry in entries]


def open_page(driver: WebDriver, url: str) -> int:
    """Navigate to `url` and return the HTTP status of the document it loaded."""
    devtools_events(driver)  # drop what earlier pages logged
    driver.get(url)
    statuses = [
        event["params"]["response"]["status"]
        for event in devtools_events(driver)
        if event["method"] == "Network.responseReceived" and event["params"]["type"] == "Document"
    ]
    return int(statuses[-1])


def task_details(driver: WebDriver, url: str, task_id: str) -> dict[str, str]:
    """The fields of Flower's page for one task, once Flower has seen it finish."""
    fields: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if open_page(driver, f"{url}/task/{task_id}") == 200:
            # textContent, not the rendered text: CSS may upper-case the labels.
            fields = driver.execute_script(
                "return Object.fromEntries([...document.querySelectorAll('.detail-row')].map("
                "r => [r.querySelector('dt').textContent.trim(), r.querySelector('dd').textContent.trim()]))"
            )
            if fields.get("Status") == "SUCCESS":
                return fields
        time.sleep(0.3)
    raise AssertionError(f"Flower did not show task {task_id} as done: {fields}")


def run_every_operation(stack: Stack) -> dict[str, AsyncResult[Any]]:
    """One successful task of each operation, all for account A (so all on child 1), finished."""
    [xml] = stack.sim.pending_requests(WXID)  # the fixture's friend request to A
    requests: dict[str, dict[str, Any]] = {
        "syncContact": {"loginer": 18, "uin": UIN},
        "getContact": {"adminUserId": 18, "uin": UIN, "userName": "wxid_8fseov8qf5di22"},
        "modifyName": {"loginer": 18, "uin": UIN, "userName": "wxid_l1k2j3h4g5f6d7", "newRemarkName": "运维"},
        "searchContact": {"adminUserId": 18, "uin": UIN, "userName": "ops_two", "queueName": "q"},
        "addContact": stack.add_contact_request("xiaolongnv"),
        "addNew": {"loginer": 18, "uin": UIN, **parse_friend_request(xml).add_new_fields()},
        "addChatRoomContact": {
            "loginer": 18,
            "uin": UIN,
            "userName": "wxid_k1l2z3x4c5v6b7",
            "chatRoomName": "18839427610@chatroom",
            "verify": "hi",
            "queueName": "q",
        },
    }
    results = {op: stack.submit(op, request) for op, request in requests.items()}
    for op, result in results.items():
        assert result.get(timeout=20)["status"] == 0, (op, result.result)
    return results


def test_flower_in_chromium(stack: Stack, workers: list[Worker], flower: str, browser: WebDriver) -> None:
    log_in(browser, USER, "wrong")
    assert open_page(browser, f"{flower}/workers") == 401
    assert "Online workers" not in browser.find_element(By.TAG_NAME, "body").text

    results = run_every_operation(stack)
    log_in(browser, USER, PASSWORD)

    # Workers: the table fills by AJAX.
    assert open_page(browser, f"{flower}/workers") == 200
    names = [f"{worker.name}@{socket.gethostname()}" for worker in workers]
    WebDriverWait(browser, 20).until(lambda d: all(name in d.find_element(By.TAG_NAME, "body").text for name in names))

    # Each task's own page: done, on its queue, by child 1. This also waits until Flower has every task's end.
    for op, result in results.items():
        fields = task_details(browser, flower, result.id)
        assert (fields["Name"], fields["Routing key"]) == (f"contactq.{op}", f"queue.{op}_1_1"), fields
        assert fields["Worker"].startswith("child1@"), fields

    # The task list: rows by AJAX, one per task (row id = uuid), 100 a page so none is on page 2.
    assert open_page(browser, f"{flower}/tasks") == 200
    Select(browser.find_element(By.CSS_SELECTOR, "#tasks-table_length select")).select_by_value("100")
    WebDriverWait(browser, 20).until(lambda d: all(d.find_elements(By.ID, r.id) for r in results.values()))
    for op, result in results.items():
        row = browser.find_element(By.ID, result.id).text
        assert f"contactq.{op}" in row and "SUCCESS" in row, row

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    png = SCREENSHOT.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
