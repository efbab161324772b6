"""The `contactq` command line against the running stack: send, watch, dead letters, the simulated WeChat, doctor."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest
from click.testing import CliRunner, Result

from contactq.cli import main
from contactq.settings import get_settings
from tests.bridge.conftest import BridgeProcess, Stomp
from tests.conftest import GEWE
from tests.stack import ACCOUNT_A, Stack

A = ACCOUNT_A


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def reply_of(result: Result) -> dict[str, object]:
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("via", ["celery", "activemq"])
def test_send_any_operation(via: str, stack: Stack, bridge: BridgeProcess) -> None:
    result = run(
        "send",
        "searchContact",
        "--via",
        via,
        "--server",
        "1",
        "-f",
        "adminUserId=18",
        "-f",
        f"uin={A['uin']}",
        "-f",
        "userName=ops_two",
        "-f",
        f"queueName=queue.reply.{uuid.uuid4().hex[:8]}",
    )
    assert result.exit_code == 0, result.output
    reply = reply_of(result)
    assert (reply["status"], reply["nick_name"], reply["uin"]) == (0, "运营二号", A["uin"])
    refused = run(
        "send",
        "searchContact",
        "--via",
        via,
        "-f",
        "adminUserId=18",
        "-f",
        f"uin={A['uin']}",
        "-f",
        "userName=wxid_nope",
        "-f",
        f"queueName=queue.reply.{uuid.uuid4().hex[:8]}",
    )
    assert refused.exit_code == 1 and reply_of(refused)["status"] == 400


def test_sync_shows_progress(stack: Stack, bridge: BridgeProcess) -> None:
    stack.sim.set_faults(latency_ms=100)
    result = run("send", "syncContact", "-f", "loginer=18", "-f", f"uin={A['uin']}")
    assert result.exit_code == 0, result.output
    assert reply_of(result)["contacts"] == 16
    assert "syncContact" in result.stderr  # the progress bar's label


def test_watch_prints_events_with_their_records(stack: Stack, bridge: BridgeProcess) -> None:
    outcome: list[Result] = []
    watcher = threading.Thread(target=lambda: outcome.append(run("watch", "--count", "1")), daemon=True)
    watcher.start()
    # An event a second until the watcher has one: those published before its queue was bound reach nobody.
    deadline = time.monotonic() + 30
    while watcher.is_alive() and time.monotonic() < deadline:
        stack.call("getContact", {"adminUserId": 18, "uin": A["uin"], "userName": "wxid_8fseov8qf5di22"})
        watcher.join(timeout=1)
    [result] = outcome
    assert result.exit_code == 0
    assert "topic.modcontact" in result.output and '"field": "wxid_8fseov8qf5di22"' in result.output
    assert '"RemarkName": "淑萍"' in result.output  # the record the event points to


def test_dead_letters_are_listed_and_replayed(stack: Stack, bridge: BridgeProcess) -> None:
    answer_to = f"queue.reply.{uuid.uuid4().hex[:8]}"
    client = Stomp()
    try:
        client.listen(f"/queue/{answer_to}")
        stack.sim.set_faults(transient=10)  # WeChat down: out of retries, answered and dead-lettered
        request = {"adminUserId": 18, "uin": A["uin"], "userName": "ops_two", "queueName": answer_to}
        client.send("/queue/queue.searchContact_1_1", json.dumps(request))
        [(_, failed)] = client.take_json(f"/queue/{answer_to}", timeout_s=60)
        assert failed["status"] == 504
        listed = ""
        for _ in range(50):  # the dead letter travels from Celery through the bridge
            listed = run("deadletters", "list").output
            if answer_to in listed:
                break
            time.sleep(0.2)
        found = re.search(
            r"^(ID:\S+)  queue\.searchContact_1_1\n    reason: [^\n]*gave up[^\n]*\n    body:   [^\n]*"
            + re.escape(answer_to),
            listed,
            re.MULTILINE,
        )
        assert found, listed
        stack.sim.set_faults()  # WeChat back
        replayed = run("deadletters", "replay", found[1])
        assert replayed.exit_code == 0 and "replayed" in replayed.output
        [(_, answered)] = client.take_json(f"/queue/{answer_to}", timeout_s=60)
        assert {k: answered[k] for k in request} == request and answered["status"] == 0
        assert found[1] not in run("deadletters", "list").output
    finally:
        client.close()


def test_simulated_wechat_from_the_command_line(stack: Stack, bridge: BridgeProcess) -> None:
    assert "uin 1150109773  wxid_az12gf9ugnoh22  server 1 child 1" in run("sim", "show").output
    assert "request from wxid_63ibkhndjl7i21 (合法人類。)" in run("sim", "show", "--account", A["wxid"]).output
    assert run("sim", "rename", "wxid_8fseov8qf5di22", "妮可").exit_code == 0
    events = stack.events.wait(lambda got: len(got) >= 1)
    assert [(topic, e["field"]) for topic, e in events] == [("topic.modcontact", "wxid_8fseov8qf5di22")]
    assert stack.contact(A, "wxid_8fseov8qf5di22")["PYQuanPin"] == "nike"  # type: ignore[index]


def test_doctor(stack: Stack, bridge: BridgeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    deadline = time.monotonic() + 15  # the bridge reports every 10 s; the test's reset cleared its last report
    while not list(stack.r.scan_iter(match="contactq:bridge:*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    healthy = run("doctor")
    assert healthy.exit_code == 0, healthy.output
    assert "worker for server 1 child 2: child2@" in healthy.output and "PROBLEM" not in healthy.output
    if GEWE:
        assert "ok       Gewechat uin 1150109773: logged in" in healthy.output
        assert "ok       callbacks endpoint: http://127.0.0.1:" in healthy.output
        stack.sim.set_online("2250109774", False)
        offline = run("doctor")
        assert "PROBLEM  Gewechat uin 2250109774: not logged in on the server" in offline.output
        stack.sim.set_online("2250109774", True)
    monkeypatch.setattr(get_settings(), "servers", {1: [1, 2], 9: [1]})
    monkeypatch.setattr(get_settings(), "store_url", "redis://:sekrit-pass@127.0.0.1:6379/9")
    sick = run("doctor")
    assert sick.exit_code == 1
    assert "contact store: redis://:**@127.0.0.1:6379/9" in sick.output and "sekrit-pass" not in sick.output
    assert (
        "PROBLEM  worker for server 9 child 1: none consumes its queues; start one: CONTACTQ_SERVER_ID=9" in sick.output
    )
