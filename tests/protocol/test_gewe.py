"""The Gewechat backend, held to the backend contract against the simulated WeChat served over the Gewechat API,
with its callbacks posted to the real callbacks endpoint: real HTTP both ways."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from pydantic import SecretStr

from contactq.callbacks import create_app as callbacks_app
from contactq.errors import (
    RETRYABLE,
    NotFound,
    NotOnline,
    OutcomeUnknown,
    ProtocolFailure,
    TooFrequent,
    Unreachable,
    WeChatTimeout,
)
from contactq.settings import Settings
from protocol.client import Opcode, Scene, load_client
from protocol.fixture import DEFAULT_FIXTURE, load_fixture
from protocol.gewe import OFFLINE_KEY, PUSH_PREFIX, Answer, GeweWeChat, error_for_answer, http_client
from protocol.gewe_server import ServedSimulation
from protocol.gewe_server import create_app as served_app
from protocol.simulated import SimulatedWeChat
from tests.protocol.contract import WeChatClientContract, World, default_fixture_world
from tests.servers import Served, free_port

A_UIN, A = "1150109773", "wxid_az12gf9ugnoh22"
B_UIN, B = "2250109774", "wxid_b7q2m0x1kk9922"
PREFIX = "gewe-contract:"
TOKEN = "test-token"
SECRET = "test-secret"


def _clean(r: redis.Redis) -> None:
    for pattern in (f"{PREFIX}*", f"{PUSH_PREFIX}*", "contactq:callback:*"):
        keys = list(r.scan_iter(match=pattern, count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture(scope="module")
def network() -> Iterator[tuple[SimulatedWeChat, Settings]]:
    """The served simulation and the callbacks endpoint, each on its own port, wired to each other."""
    r = redis.Redis.from_url("redis://127.0.0.1:6379/9", decode_responses=True)
    _clean(r)
    sim = SimulatedWeChat(r, 1, [1, 2], prefix=PREFIX, page_size=5, timeout_s=0.5)
    sim.load(load_fixture(DEFAULT_FIXTURE))
    served = ServedSimulation(r, PREFIX, page_size=5, timeout_s=0.5)
    accounts = sim.accounts()
    with Served(served_app(served, TOKEN)) as api:
        settings = Settings(
            store_url="redis://127.0.0.1:6379/9",
            protocol="gewe",
            gewe_base_url=f"{api.url}/v2/api",
            gewe_token=TOKEN,
            gewe_accounts=accounts,
            child_ids=[1, 2],
            wechat_timeout_s=2.0,
            callbacks_secret=SECRET,
        )
        with Served(callbacks_app(settings, r)) as callbacks:
            answer = httpx.post(
                f"{api.url}/v2/api/tools/setCallback",
                json={"token": TOKEN, "callbackUrl": f"{callbacks.url}/callbacks/{SECRET}"},
                headers={"X-GEWE-TOKEN": TOKEN},
            )
            assert answer.json()["ret"] == 200
            yield sim, settings
    _clean(r)
    r.close()


@pytest.fixture
def sim(network: tuple[SimulatedWeChat, Settings]) -> Iterator[SimulatedWeChat]:
    sim, _ = network
    sim.load(load_fixture(DEFAULT_FIXTURE))
    sim.r.delete(OFFLINE_KEY)
    yield sim
    sim.set_faults()


@pytest.fixture
def client(network: tuple[SimulatedWeChat, Settings], sim: SimulatedWeChat) -> GeweWeChat:
    _, settings = network
    found = load_client(settings)
    assert isinstance(found, GeweWeChat)
    return found


@pytest.fixture
def world(sim: SimulatedWeChat) -> World:
    return default_fixture_world(sim.rename)


class TestGeweContract(WeChatClientContract):
    pass


def test_wechat_codes_and_faults_come_through_http(client: GeweWeChat, sim: SimulatedWeChat) -> None:
    sim.set_faults(transient=1, too_frequent=1)  # a search is safe to repeat: its timeout is retried at once
    with pytest.raises(TooFrequent) as too_frequent:
        client.search(A_UIN, "ops_two")
    assert too_frequent.value.wechat_code == 1205
    assert client.search(A_UIN, "ops_two").nickname == "运营二号"
    sim.set_faults(latency_ms=3000)  # beyond the client's 2 s timeout
    with pytest.raises(WeChatTimeout):
        client.search(A_UIN, "ops_two")


def test_a_contact_list_from_the_servers_cache_is_not_complete(client: GeweWeChat, sim: SimulatedWeChat) -> None:
    assert client.contact_list(A_UIN, 0).complete
    sim.set_faults(transient=2)  # fetchContactsList times out, and again when tried once more: the cache answers
    page = client.contact_list(A_UIN, 0)
    assert page.usernames and not page.complete


def test_a_friend_request_that_timed_out_is_never_repeated(client: GeweWeChat, sim: SimulatedWeChat) -> None:
    found = client.search(A_UIN, "ops_two")
    sim.set_faults(transient=1)
    with pytest.raises(OutcomeUnknown, match="not sent again") as unknown:
        client.verify_user(A_UIN, Opcode.ADD, found.v1, found.v2, "hi", Scene.WECHAT_ID)
    assert not isinstance(unknown.value, RETRYABLE)  # no task retry sends it either
    assert sim.verify_log() == []  # the simulated timeout came before WeChat saw it; the client did not try again


def test_a_friend_request_to_a_server_not_there_may_be_tried_again(network: tuple[SimulatedWeChat, Settings]) -> None:
    _, settings = network
    nowhere = load_client(settings.model_copy(update={"gewe_base_url": f"http://127.0.0.1:{free_port()}/v2/api"}))
    with pytest.raises(Unreachable) as unreachable:
        nowhere.verify_user(A_UIN, Opcode.ADD, "v1_x@stranger", "v2_x@stranger", "hi", Scene.WECHAT_ID)
    assert isinstance(unreachable.value, RETRYABLE)  # nothing went out


def test_offline_accounts(client: GeweWeChat, sim: SimulatedWeChat) -> None:
    sim.set_online(A_UIN, False)
    with pytest.raises(NotOnline):
        client.search(A_UIN, "ops_two")
    sim.r.sadd(OFFLINE_KEY, f"wx_sim_{A_UIN}")  # what an Offline callback leaves
    with pytest.raises(NotOnline):
        client.session(A_UIN)
    sim.set_online(A_UIN, True)
    assert client.session(A_UIN).uin == A_UIN  # checked with /login/checkOnline, and the mark is gone
    assert not sim.r.sismember(OFFLINE_KEY, f"wx_sim_{A_UIN}")


def test_accounts_of_other_children_and_a_wrong_token(
    network: tuple[SimulatedWeChat, Settings], sim: SimulatedWeChat
) -> None:
    _, settings = network
    child_2 = GeweWeChat(http_client(settings), sim.r, settings.gewe_accounts, 1, [2])
    with pytest.raises(NotOnline, match="child 1"):
        child_2.session(A_UIN)
    assert [s.uin for s in child_2.sessions(2)] == [B_UIN]
    wrong = settings.model_copy(update={"gewe_token": SecretStr("wrong")})
    with pytest.raises(ProtocolFailure, match="token"):
        GeweWeChat(http_client(wrong), sim.r, settings.gewe_accounts, 1, [1]).search(A_UIN, "ops_two")


def test_a_received_friend_request_is_posted_as_a_callback(client: GeweWeChat, sim: SimulatedWeChat) -> None:
    client.ack_changes(2, [c.id for c in client.receive_changes(2, "t", 10)])
    found = client.search(A_UIN, "ops_two")
    client.verify_user(A_UIN, Opcode.ADD, found.v1, found.v2, "hi", Scene.WECHAT_ID)
    [change] = client.receive_changes(2, "t", 3000)
    assert (change.uin, change.kind, change.username) == (B_UIN, "request", A)
    assert change.content == sim.pending_requests(B)[0]
    client.ack_changes(2, [change.id])


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (Answer(ret=500, msg="x", data={"code": -4}), NotFound, -4),
        (Answer(ret=500, msg="x", data={"code": "1205"}), TooFrequent, 1205),
        (Answer(ret=500, msg="微信已离线", data=None), NotOnline, None),
        (Answer(ret=500, msg="操作过于频繁", data={}), TooFrequent, None),
        (Answer(ret=500, msg="联系人不存在", data=[]), NotFound, None),
        (Answer(ret=401, msg="token 无效", data=None), ProtocolFailure, None),
        (Answer(ret=500, msg="系统异常", data={"code": "abc"}), ProtocolFailure, None),
    ],
)
def test_failed_answers_map_onto_the_status_table(answer: Answer, error: type, code: int | None) -> None:
    found = error_for_answer("/contacts/search", answer)
    assert type(found) is error and found.wechat_code == code
    assert "/contacts/search" in found.message
