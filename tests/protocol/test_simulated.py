"""The simulated WeChat: held to the backend contract, plus what only the simulation does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from contactq.errors import NotOnline, Refused, TooFrequent, WeChatTimeout
from contactq.settings import Settings
from protocol.client import Opcode, Scene, load_client
from protocol.fixture import DEFAULT_FIXTURE, load_fixture
from protocol.friend_request import parse_friend_request
from protocol.simulated import SimulatedWeChat
from tests.protocol.contract import WeChatClientContract, World, default_fixture_world

A_UIN, A = "1150109773", "wxid_az12gf9ugnoh22"
B = "wxid_b7q2m0x1kk9922"
PREFIX = "contract:"


@pytest.fixture
def sim(store_redis: redis.Redis) -> Iterator[SimulatedWeChat]:
    sim = SimulatedWeChat(store_redis, 1, [1, 2], prefix=PREFIX, page_size=5, timeout_s=0.5)
    sim.load(load_fixture(DEFAULT_FIXTURE))
    yield sim
    sim.reset()


@pytest.fixture
def client(sim: SimulatedWeChat) -> SimulatedWeChat:
    return sim


@pytest.fixture
def world(sim: SimulatedWeChat) -> World:
    return default_fixture_world(sim.rename)


class TestSimulatedContract(WeChatClientContract):
    pass


def test_entry_point_loads_the_simulation_and_its_fixture(store_redis: redis.Redis) -> None:
    settings = Settings(sim_url="redis://127.0.0.1:6379/9", sim_prefix="ep:", child_ids=[2])
    client = load_client(settings)
    assert [s.uin for s in client.sessions(2)] == ["2250109774"]
    with pytest.raises(NotOnline, match="child 1"):
        client.session(A_UIN)  # hosted on child 1, and this client serves child 2 only
    assert isinstance(client, SimulatedWeChat)
    client.reset()


def test_faults_and_latency(sim: SimulatedWeChat) -> None:
    sim.set_faults(transient=1, too_frequent=1)
    with pytest.raises(WeChatTimeout):
        sim.search(A_UIN, "ops_two")
    with pytest.raises(TooFrequent) as too_frequent:
        sim.search(A_UIN, "ops_two")
    assert too_frequent.value.wechat_code == 1205
    assert sim.search(A_UIN, "ops_two").nickname == "运营二号"
    sim.set_faults(latency_ms=2000)  # beyond the 0.5 s timeout
    with pytest.raises(WeChatTimeout):
        sim.search(A_UIN, "ops_two")


def test_offline_account(sim: SimulatedWeChat) -> None:
    sim.set_online(A_UIN, False)
    with pytest.raises(NotOnline) as offline:
        sim.search(A_UIN, "ops_two")
    assert offline.value.wechat_code == -13


def test_a_call_for_an_account_of_another_child_is_refused(store_redis: redis.Redis, sim: SimulatedWeChat) -> None:
    # Children 11 and 21 hold the digits of child 1 (A's) but are not child 1.
    other = SimulatedWeChat(store_redis, 1, [11, 21], prefix=PREFIX, timeout_s=0.5)
    with pytest.raises(NotOnline, match="child 1,"):
        other.search(A_UIN, "ops_two")
    assert sim.search(A_UIN, "ops_two").nickname == "运营二号"


def test_request_waits_for_a_manual_person_and_is_accepted(sim: SimulatedWeChat) -> None:
    found = sim.search(A_UIN, "ops_two")
    sim.verify_user(A_UIN, Opcode.ADD, found.v1, found.v2, "你好", Scene.WECHAT_ID)
    [xml] = sim.pending_requests(B)
    request = parse_friend_request(xml)
    assert (request.fromusername, request.content, request.scene) == (A, "你好", 3)
    assert sim.verify_user("2250109774", Opcode.ACCEPT, request.encryptusername, request.ticket, "", Scene(3)) == A
    assert B in sim.contacts_of(A) and A in sim.contacts_of(B) and sim.pending_requests(B) == []


def test_auto_accept_and_never(sim: SimulatedWeChat) -> None:
    found = sim.search(A_UIN, "yang_guo")  # accepts at once
    sim.verify_user(A_UIN, Opcode.ADD, found.v1, found.v2, "", Scene.WECHAT_ID)
    assert "wxid_k1l2z3x4c5v6b7" in sim.contacts_of(A)
    refuser = sim.search(A_UIN, "chanyu_fly")
    with pytest.raises(Refused):
        sim.verify_user(A_UIN, Opcode.ADD, refuser.v1, refuser.v2, "", Scene.WECHAT_ID)
