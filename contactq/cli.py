"""`contactq`: run the services, and the everyday work of an operator and a developer.

Services: `worker`, `bridge`, `flower`, `metrics`, `callbacks`, `demo`. Work: `send` an operation (straight to
Celery, or through ActiveMQ as the Java side would), `watch` the topics, `deadletters list|replay`, steer the simulated
WeChat or serve it over the Gewechat API (`sim`), and `doctor`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from contactq.settings import get_settings
from tasks.queues import OPERATIONS


def _celery(*args: str, env: dict[str, str] | None = None) -> None:
    os.environ.update(env or {})
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "tasks", *args])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@click.group()
def main() -> None:
    """The WeChat contact module on Celery."""


# -- services -----------------------------------------------------------------------------------------------------


@main.command()
@click.option("--loglevel", default="info", show_default=True)
def worker(loglevel: str) -> None:
    """A worker for CONTACTQ_SERVER_ID and CONTACTQ_CHILD_IDS, consuming exactly their queues, its pool autoscaled
    between CONTACTQ_WORKER_AUTOSCALE_MIN and _MAX processes."""
    s = get_settings()
    name = f"contactq-{s.server_id}-{'-'.join(map(str, s.child_ids))}@%h"
    autoscale = f"--autoscale={s.worker_autoscale_max},{s.worker_autoscale_min}"
    _celery("worker", "-n", name, "-l", loglevel, autoscale)


@main.command()
def flower() -> None:
    """Flower on CONTACTQ_FLOWER_ADDRESS:CONTACTQ_FLOWER_PORT, behind basic auth from the settings."""
    s = get_settings()
    # Through the environment, so that the password is not on the command line for `ps` to show. Without the result
    # backend: Flower's task-result API would hand out the unmasked replies (v1, v2) the backend keeps for callers;
    # the task events it shows are masked.
    env = {"FLOWER_BASIC_AUTH": f"{s.flower_user}:{s.flower_password}", "CONTACTQ_RESULT_BACKEND": ""}
    # The running workers send their task events from now on, not from Flower's first periodic broadcast 5 s on.
    from tasks import app

    app.control.enable_events()
    _celery("flower", f"--address={s.flower_address}", f"--port={s.flower_port}", env=env)


@main.command()
def bridge() -> None:
    """The ActiveMQ bridge for CONTACTQ_SERVERS: requests into Celery, replies and events back out."""
    from bridge.service import Bridge
    from tasks import app
    from tasks.app import MaskSecrets

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/%(threadName)s] %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskSecrets())
    Bridge(app, get_settings()).run()


@main.command()
def metrics() -> None:
    """Prometheus metrics on CONTACTQ_METRICS_ADDRESS:CONTACTQ_METRICS_PORT (/metrics)."""
    from tasks import app
    from tasks.metrics import serve

    serve(app, get_settings())


@main.command()
def demo() -> None:
    """Perform every operation once through apply_async, then a few through ActiveMQ, printing replies and events."""
    from contactq.demo import run

    run()


# -- send ---------------------------------------------------------------------------------------------------------


def _field(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{pair!r} is not KEY=VALUE")
    return key, value


@contextmanager
def _stomp(listener: Any = None) -> Iterator[Any]:
    import stomp

    settings = get_settings()
    conn = stomp.Connection12(
        [(settings.activemq_host, settings.activemq_stomp_port)], auto_content_length=False, auto_decode=False
    )
    if listener is not None:
        conn.set_listener("cli", listener)
    try:
        conn.connect(settings.activemq_user, settings.activemq_password, wait=True)
    except Exception as e:
        raise click.ClickException(f"ActiveMQ on {settings.activemq_host}:{settings.activemq_stomp_port}: {e}") from e
    try:
        yield conn
    finally:
        # With a receipt: returns once ActiveMQ has taken every frame sent before, acknowledgements included.
        conn.disconnect(receipt=uuid.uuid4().hex)


class _Inbox:
    """A STOMP listener that keeps what arrives."""

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.arrived = threading.Event()

    def on_message(self, frame: Any) -> None:
        self.frames.append(frame)
        self.arrived.set()

    def wait(self, count: int, timeout_s: float) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while len(self.frames) < count and time.monotonic() < deadline:
            self.arrived.wait(0.1)
            self.arrived.clear()
        return self.frames


@main.command()
@click.argument("op", type=click.Choice(OPERATIONS))
@click.option("-f", "--field", "fields", multiple=True, metavar="KEY=VALUE", help="A request field (repeatable).")
@click.option("--via", type=click.Choice(["celery", "activemq"]), default="celery", show_default=True)
@click.option("--server", type=int, help="Server id; without --child, routed by the request's uin.")
@click.option("--child", type=int, help="Child id.")
@click.option("--timeout", "timeout_s", default=120.0, show_default=True)
def send(op: str, fields: tuple[str, ...], via: str, server: int | None, child: int | None, timeout_s: float) -> None:
    """Send one operation and print its reply, e.g. `contactq send searchContact -f adminUserId=18 -f
    uin=1150109773 -f userName=ops_two`. Values are text; numbers in text are read as numbers where a field is one."""
    request = dict(_field(f) for f in fields)
    reply = (_send_celery if via == "celery" else _send_activemq)(op, request, server, child, timeout_s)
    click.echo(json.dumps(reply, ensure_ascii=False, indent=2))
    if reply.get("status") != 0:
        sys.exit(1)


def _send_celery(op: str, request: dict[str, Any], server: int | None, child: int | None, timeout_s: float) -> Any:
    from contactq.errors import ContactqError
    from tasks import submit

    try:
        result = submit(op, request, server_id=server if child is not None else None, child_id=child)
    except ContactqError as e:
        raise click.ClickException(e.message) from e
    if op == "syncContact":
        _follow_progress(result, timeout_s)
    return result.get(timeout=timeout_s)


def _follow_progress(result: Any, timeout_s: float) -> None:
    """A progress bar fed by the sync's PROGRESS state: contacts stored of those the account had at the last sync."""
    deadline = time.monotonic() + timeout_s
    with click.progressbar(length=1, label="syncContact", show_pos=True, file=sys.stderr) as bar:
        while not result.ready() and time.monotonic() < deadline:
            meta = result.backend.get_task_meta(result.id)
            if meta["status"] == "PROGRESS":
                stored, expected = int(meta["result"]["stored"]), int(meta["result"]["expected"])
                bar.length = max(expected, stored, 1)
                bar.update(stored - bar.pos)
            time.sleep(0.2)
        bar.length = max(bar.pos, 1)
        bar.update(bar.length - bar.pos)


def _send_activemq(op: str, request: dict[str, Any], server: int | None, child: int | None, timeout_s: float) -> Any:
    from tasks.queues import queue_name, server_queue_name

    settings = get_settings()

    server = server if server is not None else settings.server_id
    destination = queue_name(op, server, child) if child is not None else server_queue_name(op, server)
    # A reply queue of its own, so that every operation answers here.
    request.setdefault("queueName", f"contactq.cli.{uuid.uuid4().hex[:12]}")
    inbox = _Inbox()
    with _stomp(inbox) as conn:
        conn.subscribe(f"/queue/{request['queueName']}", id="reply", ack="auto")
        conn.send(f"/queue/{destination}", _json(request), headers={"persistent": "true"})
        frames = inbox.wait(1, timeout_s)
    if not frames:
        raise click.ClickException(f"no reply on {request['queueName']} within {timeout_s:g} s")
    return json.loads(frames[0].body)


# -- watch --------------------------------------------------------------------------------------------------------


@main.command()
@click.option("--topic", "topics", multiple=True, help="Topics to watch (repeatable); all by default.")
@click.option("--count", type=int, default=0, help="Stop after this many events (0: until Ctrl-C).")
def watch(topics: tuple[str, ...], count: int) -> None:
    """Print each event as it comes, with the contact record it points to."""
    from kombu import Connection, Queue, binding

    from tasks import runtime
    from tasks.outbox import events_exchange

    settings = get_settings()
    exchange = events_exchange(settings)
    names = topics or tuple(settings.topics.values())
    queue = Queue(
        f"contactq.watch.{uuid.uuid4().hex[:8]}",
        bindings=[binding(exchange, routing_key=t) for t in names],
        auto_delete=True,
    )
    store = runtime().store
    seen = 0
    with Connection(settings.broker_url) as conn:
        bound = queue(conn.channel())
        bound.declare()
        try:
            while count == 0 or seen < count:
                message = bound.get(no_ack=True)
                if message is None:
                    time.sleep(0.1)
                    continue
                event = message.payload
                record = store.contact(event["uin"], event["userName"], event["field"])
                click.echo(f"{message.delivery_info['routing_key']} {_json(event)}")
                click.echo(f"    {_json(record) if record else '(no stored record: deleted)'}")
                seen += 1
        except KeyboardInterrupt:
            pass
        finally:
            bound.delete()


# -- dead letters -------------------------------------------------------------------------------------------------


@main.group()
def deadletters() -> None:
    """The bridge's dead-letter queue in ActiveMQ: refused messages and requests that ran out of retries."""


def _browse(timeout_s: float = 5.0) -> list[Any]:
    settings = get_settings()
    inbox = _Inbox()
    # Read through the map transformation too: a MapMessage read without it has an empty body.
    headers = {"browser": "true", "transformation": "jms-map-json"}
    with _stomp(inbox) as conn:
        conn.subscribe(f"/queue/{settings.bridge_deadletter_queue}", id="browse", ack="auto", headers=headers)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not any(f.headers.get("browser") == "end" for f in inbox.frames):
            time.sleep(0.05)
    return [f for f in inbox.frames if f.headers.get("browser") != "end"]


@deadletters.command("list")
def list_deadletters() -> None:
    """Every dead letter: its id, where it was sent, why it was refused, and its body."""
    from bridge.outbound import ORIGINAL_DESTINATION, REASON

    frames = _browse()
    for frame in frames:
        body = frame.body.decode("utf-8", "replace")
        click.echo(f"{frame.headers['message-id']}  {frame.headers.get(ORIGINAL_DESTINATION, '?')}")
        click.echo(f"    reason: {frame.headers.get(REASON, '?')}")
        click.echo(f"    body:   {body[:300]}")
    click.echo(f"{len(frames)} dead letter(s)")


@deadletters.command()
@click.argument("message_ids", nargs=-1, required=True)
def replay(message_ids: tuple[str, ...]) -> None:
    """Send dead letters back to the queue they were first sent to, as the same kind of JMS message."""
    from bridge.outbound import ORIGINAL_DESTINATION
    from bridge.service import resend_headers

    settings = get_settings()

    for message_id in message_ids:
        inbox = _Inbox()
        with _stomp(inbox) as conn:
            dlq = f"/queue/{settings.bridge_deadletter_queue}"
            conn.subscribe(
                dlq, id="replay", ack="client-individual", headers={"selector": f"JMSMessageID = '{message_id}'"}
            )
            [frame, *_] = inbox.wait(1, 5) or [None]
            if frame is None:
                raise click.ClickException(f"no dead letter {message_id}")
            destination = frame.headers[ORIGINAL_DESTINATION]
            conn.send(f"/queue/{destination}", frame.body, headers=resend_headers(dict(frame.headers), frame.body))
            conn.ack(frame.headers["ack"])
        click.echo(f"replayed {message_id} to {destination}")


# -- the simulated WeChat -----------------------------------------------------------------------------------------


def _sim() -> Any:
    # The simulation's state is shared, whichever backend the workers reach it through (in process, or over HTTP).
    from protocol.simulated import from_settings

    return from_settings(get_settings())


@main.group()
def sim() -> None:
    """Show and change the simulated WeChat: people, friendships, requests, and what WeChat pushes."""


@sim.command()
@click.option("--account", help="A wxid: list its contacts and the friend requests waiting for it.")
def show(account: str | None) -> None:
    """The accounts, or one account's contacts and pending requests."""
    from protocol.friend_request import parse_friend_request

    s = _sim()
    if account is None:
        for child in sorted({c for children in get_settings().servers.values() for c in children}):
            for session in s.sessions(child):
                click.echo(
                    f"uin {session.uin}  {session.wxid}  server {session.server_id} child {session.child_id}"
                    f"  {len(s.contacts_of(session.wxid))} contacts"
                )
        return
    for wxid in s.contacts_of(account):
        click.echo(wxid)
    for xml in s.pending_requests(account):
        request = parse_friend_request(xml)
        click.echo(f"request from {request.fromusername} ({request.fromnickname}): {request.content}")


@sim.command()
@click.argument("wxid")
@click.argument("nickname")
def rename(wxid: str, nickname: str) -> None:
    """A person takes a new nickname: pushed to every account that has them."""
    _sim().rename(wxid, nickname)
    click.echo("ok")


@sim.command("delete-account")
@click.argument("wxid")
def delete_account(wxid: str) -> None:
    """A person deletes their WeChat account: gone from every contact list and chatroom."""
    _sim().delete_account(wxid)
    click.echo("ok")


@sim.command()
@click.argument("account")
@click.argument("friend")
def unfriend(account: str, friend: str) -> None:
    """An account's owner deletes a friend on the phone."""
    _sim().unfriend(account, friend)
    click.echo("ok")


@sim.command("add-member")
@click.argument("chatroom")
@click.argument("wxid")
def add_member(chatroom: str, wxid: str) -> None:
    """Someone joins a chatroom."""
    _sim().add_member(chatroom, wxid)
    click.echo("ok")


@sim.command("remove-member")
@click.argument("chatroom")
@click.argument("wxid")
def remove_member(chatroom: str, wxid: str) -> None:
    """Someone leaves a chatroom."""
    _sim().remove_member(chatroom, wxid)
    click.echo("ok")


@sim.command()
@click.argument("uin")
@click.argument("state", type=click.Choice(["online", "offline"]))
def login(uin: str, state: str) -> None:
    """Bring an account online or take it offline."""
    _sim().set_online(uin, state == "online")
    click.echo("ok")


@sim.command()
@click.option("--latency-ms", default=0)
@click.option("--transient", default=0, help="Fail this many next calls with a timeout.")
@click.option("--too-frequent", default=0, help="Fail this many next calls with WeChat's 1205.")
def faults(latency_ms: int, transient: int, too_frequent: int) -> None:
    """Latency and faults on every WeChat call (all zero: none)."""
    _sim().set_faults(latency_ms=latency_ms, transient=transient, too_frequent=too_frequent)
    click.echo("ok")


@sim.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2531, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the simulation behind the Gewechat API (/v2/api, token CONTACTQ_GEWE_TOKEN), posting callbacks to the
    URL set with /tools/setCallback; workers reach it with CONTACTQ_PROTOCOL=gewe."""
    import uvicorn

    from protocol.gewe_server import ServedSimulation, create_app

    settings = get_settings()
    sim = _sim()  # loads the fixture when there is no simulation yet
    served = ServedSimulation(sim.r, settings.sim_prefix, settings.sim_page_size, settings.wechat_timeout_s)
    uvicorn.run(create_app(served, settings.gewe_token_value()), host=host, port=port, log_level="warning")


@sim.command()
def accounts() -> None:
    """The simulated accounts as CONTACTQ_GEWE_ACCOUNTS (JSON): the mapping the gewe backend needs."""
    click.echo(json.dumps([a.model_dump() for a in _sim().accounts()]))


# -- the Gewechat callbacks ---------------------------------------------------------------------------------------


@main.command()
def callbacks() -> None:
    """The endpoint Gewechat servers post callbacks to: POST http://CONTACTQ_CALLBACKS_ADDRESS:PORT/callbacks/SECRET."""
    from contactq.callbacks import serve as serve_callbacks

    serve_callbacks(get_settings())


# -- doctor -------------------------------------------------------------------------------------------------------


@main.command()
def doctor() -> None:
    """Check Redis, the Celery broker, ActiveMQ, a worker for every child and the bridge; say plainly what is wrong."""
    from contactq.doctor import checks

    problems = 0
    for name, ok, detail in checks():
        click.echo(f"{'ok     ' if ok else 'PROBLEM'}  {name}: {detail}")
        problems += not ok
    if problems:
        click.echo(f"{problems} problem(s)")
        sys.exit(1)


if __name__ == "__main__":
    main()
