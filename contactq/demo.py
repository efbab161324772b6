"""Every operation once, through apply_async, against the simulated WeChat's default fixture.

Prints each reply and each event a Python consumer bound with `topic.#` receives.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click
from kombu import Connection, Queue

from contactq.protocol.friend_request import parse_friend_request
from contactq.protocol.simulated import SimulatedWeChat
from contactq.tasks import app, queue_for, runtime, settings
from contactq.tasks.add_chatroom_contact import add_chatroom_contact
from contactq.tasks.add_contact import add_contact
from contactq.tasks.add_new import add_new
from contactq.tasks.get_contact import get_contact
from contactq.tasks.modify_name import modify_name
from contactq.tasks.outbox import events_exchange
from contactq.tasks.search_contact import search_contact
from contactq.tasks.sync_contact import sync_contact

A_UIN, A = "1150109773", "wxid_az12gf9ugnoh22"  # on child 1
B_UIN, B = "2250109774", "wxid_b7q2m0x1kk9922"  # on child 2
ROOM, YANG, NICOLE, ZENG = "18839427610@chatroom", "wxid_k1l2z3x4c5v6b7", "wxid_8fseov8qf5di22", "wxid_l1k2j3h4g5f6d7"


def _show(title: str, value: Any) -> None:
    click.secho(title, fg="cyan", bold=True)
    click.echo("  " + json.dumps(value, ensure_ascii=False))


def run() -> None:
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
        bound.delete()
    click.secho(f"Flower: http://{settings.flower_address}:{settings.flower_port}/ ({settings.flower_user})", bold=True)
    app.close()
