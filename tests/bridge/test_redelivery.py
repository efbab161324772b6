"""A request is acknowledged to ActiveMQ only once its task is in the Celery broker: a bridge that cannot hand it on
leaves it in ActiveMQ, and the next bridge delivers it, once."""

from __future__ import annotations

import json
import time
import uuid

from tests.bridge.conftest import BridgeProcess, Stomp
from tests.stack import Stack, Worker


def test_request_waits_in_activemq_until_a_bridge_can_hand_it_on(
    broker: None, workers: list[Worker], stack: Stack
) -> None:
    answer_to = f"queue.reply.{uuid.uuid4().hex[:8]}"
    request = stack.add_contact_request("xiaolongnv") | {"queueName": answer_to}
    # A bridge whose Celery broker is unreachable: it must not acknowledge what it cannot pass on.
    blind = BridgeProcess(env={"CONTACTQ_BROKER_URL": "redis://127.0.0.1:9/0"})
    blind.start()
    client = Stomp()
    try:
        blind.wait_connected()
        client.listen(f"/queue/{answer_to}")
        client.send("/queue/queue.addContact_1_1", json.dumps(request))
        deadline = time.monotonic() + 30
        while "could not pass on message" not in blind.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "could not pass on message" in blind.log()
    finally:
        blind.stop()
    assert stack.sim.pending_requests("wxid_a9s8d7f6g5h4j3") == []

    sighted = BridgeProcess()
    sighted.start()
    try:
        sighted.wait_connected()
        [(_, reply)] = client.take_json(f"/queue/{answer_to}", timeout_s=30)
    finally:
        sighted.stop()
        client.close()
    assert reply == {**request, "status": 0, "message": ""}
    assert len(stack.sim.pending_requests("wxid_a9s8d7f6g5h4j3")) == 1
