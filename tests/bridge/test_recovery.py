"""Reading kombu's Redis messages for the task ids they carry."""

from __future__ import annotations

import json

from bridge.recovery import queue_keys, task_ids


def message(task_id: str) -> dict[str, object]:
    return {"body": "W10=", "headers": {"id": task_id, "argsrepr": "('ID:x:1:1:1:10',)"}, "properties": {}}


def test_task_ids_of_queued_and_unacknowledged_messages() -> None:
    queued = json.dumps(message("ID:x:1:1:1:1"))
    unacked = json.dumps([message("ID:x:1:1:1:2"), "queue.searchContact_1_1", "queue.searchContact_1_1"])
    assert task_ids([queued, unacked, "not json", json.dumps({"no": "headers"})]) == {"ID:x:1:1:1:1", "ID:x:1:1:1:2"}
    # An id is matched whole, not found inside a longer one or in the arguments' repr.
    assert "ID:x:1:1:1:10" not in task_ids([queued])


def test_every_priority_list_of_a_queue_is_looked_in() -> None:
    assert queue_keys("q") == ["q", "q\x06\x163", "q\x06\x166", "q\x06\x169"]
