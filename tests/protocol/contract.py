"""The contract every WeChat protocol backend must pass.

A backend's test module subclasses `WeChatClientContract` and provides two fixtures: `client`, the backend for server
1 serving children 1 and 2, and `world`, what that backend's test world holds and a way to make WeChat push a change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from contactq.errors import NotFound, NotOnline, WeChatError
from protocol.client import Opcode, Scene, WeChatClient


@dataclass(frozen=True)
class World:
    uin: str  # an account on child 1
    wxid: str
    friend: str  # one of its friends
    chatroom: str  # a chatroom it is in
    member: str  # another member of that chatroom
    stranger_query: str  # a WeChat ID that finds a stranger who takes requests by hand
    stranger_wxid: str
    stranger_nickname: str
    contact_count: int  # friends and chatrooms in its list
    rename_friend: Callable[[str], None]  # make WeChat push: `friend` takes a new nickname


def default_fixture_world(rename_friend: Callable[[str, str], None]) -> World:
    """The world of the simulated WeChat's default fixture, for a backend tested against the simulation (in process
    or served); `rename_friend(wxid, nickname)` is the simulation's."""
    friend = "wxid_8fseov8qf5di22"
    return World(
        uin="1150109773",
        wxid="wxid_az12gf9ugnoh22",
        friend=friend,
        chatroom="18839427610@chatroom",
        member="wxid_k1l2z3x4c5v6b7",
        stranger_query="ops_two",
        stranger_wxid="wxid_b7q2m0x1kk9922",
        stranger_nickname="运营二号",
        contact_count=18,
        rename_friend=lambda name: rename_friend(friend, name),
    )


class WeChatClientContract:
    def test_sessions_and_routing(self, client: WeChatClient, world: World) -> None:
        assert world.uin in [s.uin for s in client.sessions(1)]
        session = client.session(world.uin)
        assert (session.wxid, session.server_id, session.child_id) == (world.wxid, 1, 1)
        with pytest.raises(NotOnline):
            client.session("999999999")

    def test_search(self, client: WeChatClient, world: World) -> None:
        found = client.search(world.uin, world.stranger_query)
        assert found.v1.startswith("v1_") and found.v2.startswith("v2_")
        assert found.nickname == world.stranger_nickname
        with pytest.raises(NotFound):
            client.search(world.uin, "no-such-user-anywhere")

    def test_contact_list_pages_cover_every_contact_once(self, client: WeChatClient, world: World) -> None:
        seen: list[str] = []
        seq = 0
        while True:
            page = client.contact_list(world.uin, seq)
            assert page.complete  # the server's own list, not a cache: a sync removes what it lacks
            seen += page.usernames
            if not page.more:
                break
            assert page.next_seq > seq
            seq = page.next_seq
        assert len(seen) == len(set(seen)) == world.contact_count
        assert world.friend in seen and world.chatroom in seen

    def test_details_of_friends_and_chatrooms(self, client: WeChatClient, world: World) -> None:
        details = client.contact_details(world.uin, [world.friend, world.chatroom, "wxid_not_a_contact"])
        assert [d.UserName for d in details] == [world.friend, world.chatroom]
        assert details[1].ChatRoomOwner

    def test_chatroom_members(self, client: WeChatClient, world: World) -> None:
        members = [m.UserName for m in client.chatroom_members(world.uin, world.chatroom)]
        assert world.wxid in members and world.member in members
        assert client.member_detail(world.uin, world.chatroom, world.member).UserName == world.member
        with pytest.raises(NotFound):
            client.member_detail(world.uin, world.chatroom, "wxid_not_a_member")

    def test_set_remark(self, client: WeChatClient, world: World) -> None:
        client.set_remark(world.uin, world.friend, "备注")
        assert client.contact_details(world.uin, [world.friend])[0].Remark == "备注"
        with pytest.raises(NotFound):
            client.set_remark(world.uin, "wxid_not_a_contact", "x")

    def test_friend_request_needs_the_tickets_of_a_search(self, client: WeChatClient, world: World) -> None:
        found = client.search(world.uin, world.stranger_query)
        with pytest.raises(WeChatError):
            client.verify_user(world.uin, Opcode.ADD, found.v1, "v2_forged@stranger", "hi", Scene.WECHAT_ID)
        target = client.verify_user(world.uin, Opcode.ADD, found.v1, found.v2, "hi", Scene.WECHAT_ID)
        assert target == world.stranger_wxid

    def test_pushed_changes_come_until_acknowledged(self, client: WeChatClient, world: World) -> None:
        client.ack_changes(1, [c.id for c in client.receive_changes(1, "contract", 10)])
        world.rename_friend("新名字")
        changes = client.receive_changes(1, "contract", 2000)
        assert [(c.uin, c.kind, c.username) for c in changes] == [(world.uin, "contact", world.friend)]
        again = client.receive_changes(1, "contract", 10)
        assert [c.id for c in again] == [c.id for c in changes]
        client.ack_changes(1, [c.id for c in again])
        assert client.receive_changes(1, "contract", 10) == []
