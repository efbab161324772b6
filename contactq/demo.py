"""Every operation once, through apply_async, against the simulated WeChat's default fixture; then requests through
ActiveMQ, as the Java platform sends them.

Prints each reply and each event: a Python consumer bound with `topic.#`, then an ActiveMQ consumer of the topics.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
import stomp
from kombu import Connection, Queue

from contactq.settings import get_settings
from protocol.friend_request import parse_friend_request
from protocol.simulated import SimulatedWeChat
from tasks import app, queue_for, runtime
from tasks.add_chatroom_contact import add_chatroom_contact
from tasks.add_contact import add_contact
from tasks.add_new import add_new
from tasks.get_contact import get_contact
from tasks.modify_name import modify_name
from tasks.outbox import events_exchange
from tasks.search_contact import search_contact
from tasks.sync_contact import sync_contact

A_UIN, A = "1150109773", "wxid_az12gf9ugnoh22"  # on child 1
B_UIN, B = "2250109774", "wxid_b7q2m0x1kk9922"  # on child 2
ROOM, YANG, NICOLE, ZENG = "18839427610@chatroom", "wxid_k1l2z3x4c5v6b7", "wxid_8fseov8qf5di22", "wxid_l1k2j3h4g5f6d7"


def _show(title: str, value: Any) -> None:
    click.secho(title, fg="cyan", bold=True)
    click.echo("  " + json.dumps(value, ensure_ascii=False))


def run() -> None:
    settings = get_settings()
    client = runtime().client
    if not isinstance(client, SimulatedWeChat):
        raise click.ClickException("the demo plays on the simulated WeChat (CONTACTQ_PROTOCOL=simulated)")
    # A fresh simulated world, and no memory of the friend requests of an earlier demo.
    client.load_file(settings.fixture)
    store = runtime().store.r
    for uin in (A_UIN, B_UIN):
        for pattern in (f"contactq:once:*:{uin}:*", f"contactq:ratelimit:{uin}:*"):
            for key in store.scan_iter(match=pattern):
                store.delete(key)

    with Connection(settings.broker_url) as conn:
        events = Queue("contactq.demo.events", events_exchange(settings), routing_key="topic.#", auto_delete=True)
        bound = events(conn.channel())
        bound.declare()
        bound.purge()
        try:

            def perform(task: Any, op: str, request: dict[str, Any]) -> dict[str, Any]:
                queue = queue_for(op, uin=str(request["uin"]))
                reply: dict[str, Any] = task.apply_async(args=[request], queue=queue).get(timeout=60)
                _show(f"{op} on {queue} -> reply", reply)
                time.sleep(0.5)  # let the pushed changes of this step arrive before the next
                while (message := bound.get(no_ack=True)) is not None:
                    _show(f"    event on {message.delivery_info['routing_key']}", message.payload)
                return reply

            perform(sync_contact, "syncContact", {"loginer": 18, "uin": A_UIN})
            perform(get_contact, "getContact", {"adminUserId": 18, "uin": A_UIN, "userName": NICOLE})
            perform(
                modify_name,
                "modifyName",
                {"loginer": 18, "uin": A_UIN, "userName": ZENG, "newRemarkName": "曾老师", "wechatUser": "{}"},
            )
            found = perform(
                search_contact,
                "searchContact",
                {"adminUserId": 18, "uin": A_UIN, "userName": "ops_two", "queueName": "queue.receiveSearchContact"},
            )
            perform(
                add_contact,
                "addContact",
                {
                    "adminUserId": 18,
                    "uin": A_UIN,
                    "userName": "ops_two",
                    "v1": found["user_name"],
                    "v2": found["stranger"],
                    "verify": "你好，我是运营一号",
                    "type": 3,
                    "queueName": "queue.receiveAddContact",
                },
            )
            [xml] = client.pending_requests(B)
            _show("the friend request XML account B receives", xml)
            perform(
                add_new,
                "addNew",
                {"loginer": 18, "uin": B_UIN, **parse_friend_request(xml).add_new_fields(), "wechatUser": "{}"},
            )
            perform(
                add_chatroom_contact,
                "addChatRoomContact",
                {
                    "loginer": 18,
                    "uin": A_UIN,
                    "userName": YANG,
                    "chatRoomName": ROOM,
                    "verify": "群里见过",
                    "queueName": "queue.receiveAddChatRoomContact",
                },
            )
            perform(
                get_contact,
                "getContact",
                {
                    "adminUserId": 18,
                    "uin": A_UIN,
                    "userName": YANG,
                    "chatRoomName": ROOM,
                    "queueName": "queue.receiveChatRoomMember",
                },
            )
        finally:
            bound.delete()  # kombu's Redis transport does not delete an auto_delete queue by itself
    through_activemq()
    click.secho(f"Flower: http://{settings.flower_address}:{settings.flower_port}/ ({settings.flower_user})", bold=True)
    app.close()


class _Shown(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.count = 0

    def on_message(self, frame: Any) -> None:
        self.count += 1
        _show(f"    from ActiveMQ {frame.headers['destination']}", json.loads(frame.body))


def through_activemq() -> None:
    """TextMessages of JSON to the seed's queues, replies and events read back from ActiveMQ."""
    settings = get_settings()
    click.secho("\nThrough ActiveMQ (STOMP 127.0.0.1:61613), as the Java platform sends:", fg="yellow", bold=True)
    shown = _Shown()
    conn = stomp.Connection12([(settings.activemq_host, settings.activemq_stomp_port)], auto_content_length=False)
    conn.set_listener("demo", shown)
    conn.connect(settings.activemq_user, settings.activemq_password, wait=True)
    answer_to = f"contactq.cli.demo{os.getpid()}"  # a queue of its own, which ActiveMQ removes once idle
    for destination in (f"/queue/{answer_to}", "/topic/topic.modcontact"):
        conn.subscribe(destination, id=destination, ack="auto")
    requests = [
        (
            "queue.searchContact_1",
            {"adminUserId": 18, "uin": A_UIN, "userName": "zhangsan_abc", "queueName": answer_to},
        ),
        ("queue.getContact_1", {"adminUserId": 18, "uin": B_UIN, "userName": A}),
        (
            "queue.modifyName_1_2",
            {"uin": B_UIN, "userName": A, "loginer": 18, "newRemarkName": "一号同事", "wechatUser": "{}"},
        ),
    ]
    for queue, request in requests:
        _show(f"send to ActiveMQ {queue}", request)
        conn.send(f"/queue/{queue}", json.dumps(request, ensure_ascii=False), headers={"persistent": "true"})
    deadline = time.monotonic() + 30
    while shown.count < 3 and time.monotonic() < deadline:  # the search's reply, an event each for the others
        time.sleep(0.1)
    conn.disconnect()
