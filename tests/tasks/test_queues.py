import pytest

from contactq.tasks.queues import OPERATIONS, celery_queue, queue_name, task_name, worker_queues


def test_queue_and_task_names() -> None:
    assert queue_name("searchContact", 1, 2) == "queue.searchContact_1_2"
    assert task_name("addChatRoomContact") == "contactq.addChatRoomContact"
    with pytest.raises(ValueError, match="unknown operation"):
        queue_name("deleteEverything", 1, 1)


def test_a_worker_consumes_exactly_its_children_queues() -> None:
    queues = worker_queues(3, [1, 4])
    assert len(queues) == 2 * (len(OPERATIONS) + 1)
    assert "queue.syncContact_3_4" in queues and "queue.pushedChange_3_1" in queues
    assert not [q for q in queues if not (q.endswith("_3_1") or q.endswith("_3_4"))]


def test_celery_queue_is_a_direct_queue_of_the_same_name() -> None:
    q = celery_queue("queue.getContact_1_1")
    assert (q.name, q.exchange.name, q.exchange.type, q.routing_key) == ("queue.getContact_1_1",) * 2 + (
        "direct",
        "queue.getContact_1_1",
    )
