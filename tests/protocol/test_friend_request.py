from pathlib import Path

import pytest

from contactq.errors import InvalidRequest, UnsafeXml
from protocol.friend_request import FriendRequest, friend_request_xml, parse_friend_request

# The seed's own example, exactly.
SEED_XML = (
    '<msg fromusername="wxid_63ibkhndjl7i21" encryptusername="v1_b164fe39f73761f1bc04e818df345253cfce2effa72ae9d36074'
    'ed4502602225319830f98279b47e2e11509f14b871f6@stranger" fromnickname="合法人類。" content="我是合法人類。" '
    'fullpy="hefarenlei" shortpy="HFRL" imagestatus="3" scene="30" country="CN" province="Fujian" city="Xiamen" '
    'sign="" percard="1" sex="2" alias="c752184" weibo="" albumflag="0" albumstyle="0" albumbgimgid="" snsflag="17" '
    'snsbgimgid="http://shmmsns.qpic.cn/mmsns/jJSbu4Te5ibibue2PRXqlEAVEC0sHHzG4o6W1U0nQSibnnlBicQcjjCv3WZFMWLl2AibCvEsD'
    'epdWGqA/0" snsbgobjectid="12784451061011583048" mhash="6d5533cadef8b74eb13b8aa623880570" '
    'mfullhash="6d5533cadef8b74eb13b8aa623880570" bigheadimgurl="http://wx.qlogo.cn/mmhead/ver_1/icbJ1Wiavd2eIpVB4O68'
    'OECEzx2QG7ZziaWCgUicdbHNwQQaeib7LU5IVXk3iajdy0ePQESVSQ66yVkQ5j10tCrRDPyJM2dXlx40f6BASALPPtgKk/0" '
    'smallheadimgurl="http://wx.qlogo.cn/mmhead/ver_1/icbJ1Wiavd2eIpVB4O68OECEzx2QG7ZziaWCgUicdbHNwQQaeib7LU5IVXk3iajdy0e'
    'PQESVSQ66yVkQ5j10tCrRDPyJM2dXlx40f6BASALPPtgKk/132" ticket="v2_0e2e4a9a7aa9d162d9580ab57d42dc39e8d155a3fa8afd4e022'
    'ed72ebc43b0d3e7973927229c25db79c70bb0d8d2130d79ead73bba642762b8606d0228841842@stranger" opcode="2" '
    'googlecontact="" qrticket="" chatroomusername="" sourceusername="" sourcenickname=""> '
    '<brandlist count="0" ver="671660875"/> </msg>'
)


def test_seed_example_parses_into_add_new_fields() -> None:
    req = parse_friend_request(SEED_XML)
    assert req.fromusername == "wxid_63ibkhndjl7i21"
    assert req.fromnickname == "合法人類。"
    assert req.content == "我是合法人類。"
    assert (req.scene, req.sex, req.alias, req.city) == (30, 2, "c752184", "Xiamen")
    assert req.model_extra is not None and req.model_extra["snsflag"] == "17"  # the rest kept as it came
    fields = req.add_new_fields()
    assert fields["userName"].startswith("v1_b164fe39") and fields["userName"].endswith("@stranger")
    assert fields["verifyUserTicket"].startswith("v2_0e2e4a9a") and fields["verifyUserTicket"].endswith("@stranger")
    assert (fields["type"], fields["opcode"], fields["verifyContent"]) == (30, 3, "")


def test_built_xml_round_trips() -> None:
    req = FriendRequest(
        fromusername="wxid_a",
        encryptusername="v1_x@stranger",
        ticket="v2_y@stranger",
        scene=14,
        content='<"&> 你好',
        chatroomusername="1@chatroom",
    )
    assert parse_friend_request(friend_request_xml(req)) == req


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<msg fromusername="&lol3;" encryptusername="v1" ticket="v2" scene="3"/>"""


def test_entity_expansion_is_refused() -> None:
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        parse_friend_request(BILLION_LAUGHS)


def test_external_entity_is_never_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    xml = (
        f'<!DOCTYPE msg [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<msg fromusername="&x;" encryptusername="v1" ticket="v2" scene="3"/>'
    )
    with pytest.raises(UnsafeXml) as refused:
        parse_friend_request(xml)
    assert "top secret" not in str(refused.value)


def test_entity_declared_without_doctype_keyword_case() -> None:
    with pytest.raises(UnsafeXml):
        parse_friend_request('<!doctype msg [<!entity a "b">]><msg/>')


def test_oversized_xml_is_refused_before_parsing() -> None:
    big = SEED_XML.replace('content="我是合法人類。"', f'content="{"x" * 70_000}"')
    with pytest.raises(UnsafeXml, match="more than"):
        parse_friend_request(big)
    assert parse_friend_request(big, max_bytes=200_000).content == "x" * 70_000


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("<msg fromusername='a'", "not well-formed"),
        ('<other fromusername="a" encryptusername="v1" ticket="v2" scene="3"/>', "must be a <msg>"),
        ('<msg fromusername="a" encryptusername="v1" scene="3"/>', "ticket"),
        ('<msg fromusername="a" encryptusername="v1" ticket="v2" scene="thirty"/>', "scene"),
    ],
)
def test_malformed_xml_gets_a_clear_error(xml: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_friend_request(xml)
