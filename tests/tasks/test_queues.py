import pytest

from tasks.queues import (
    OPERATIONS,
    RequestQueue,
    activemq_request_queues,
    celery_queue,
    parse_request_queue,
    queue_name,
    reply_queue_problem,
    task_name,
    worker_queues,
)


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


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("queue.searchContact_1_2", RequestQueue("searchContact", 1, 2)),
        ("queue.getContact_12", RequestQueue("getContact", 12, None)),  # the seed's examples: routed by uin
        ("queue.addChatRoomContact3_4", RequestQueue("addChatRoomContact", 3, 4)),  # the seed's, no underscore
        ("queue.addChatRoomContact_3_4", RequestQueue("addChatRoomContact", 3, 4)),
        ("queue.searchContact1_2", None),
        ("queue.addChatRoomContact3", None),
        ("queue.deleteAll_1_1", None),
        ("queue.reply.search", None),
        ("queue.receiveSearchContact", None),
        ("queue.searchContact_1_2_3", None),
    ],
)
def test_request_queue_spellings(name: str, parsed: RequestQueue | None) -> None:
    assert parse_request_queue(name) == parsed


def test_the_bridge_consumes_every_spelling_of_its_children() -> None:
    names = activemq_request_queues(1, [1, 2])
    assert len(names) == 7 * 2 + 7 + 2
    assert {"queue.getContact_1", "queue.addChatRoomContact1_2", "queue.addNew_1_1"} <= set(names)
    assert all(parse_request_queue(n) is not None for n in names)


@pytest.mark.parametrize("name", ["queue.receiveSearchContact", "queue.reply.ab12", "replies-1", "A_b.c"])
def test_plain_reply_queues_are_taken(name: str) -> None:
    assert reply_queue_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "plain queue name"),
        ("a,b", "plain queue name"),
        ("queue://x", "plain queue name"),
        ("topic://topic.modcontact", "plain queue name"),
        ("/topic/topic.modcontact", "plain queue name"),
        ("a b", "plain queue name"),
        ("q\nx", "plain queue name"),
        ("reply\n", "plain queue name"),
        ("x" * 201, "plain queue name"),
        ("DLQ.contactq", "dead-letter"),
        ("ActiveMQ.Advisory.Queue", "dead-letter"),
        ("queue.searchContact_1_1", "request queue"),
        ("queue.addNew_1", "request queue"),
        ("queue.addChatRoomContact1_2", "request queue"),
    ],
)
def test_a_reply_queue_is_a_plain_name_that_is_none_of_ours(name: str, problem: str) -> None:
    found = reply_queue_problem(name)
    assert found is not None and problem in found
