from protocol.client import ChatroomMember, RawContact
from protocol.records import CONTACT_FIELDS, contact_record, member_record

SEED_FIELDS = {
    "ContactType",
    "ExtInfoExt",
    "Sex",
    "EncryptUsername",
    "wechatUserName",
    "PYQuanPin",
    "Remark",
    "LabelLists",
    "ChatroomVersion",
    "ExtInfo",
    "ChatRoomOwner",
    "VerifyFlag",
    "ContactFlag",
    "UserName",
    "HeadImgUrl",
    "RemarkPYInitial",
    "MsgType",
    "City",
    "NickName",
    "Province",
    "Alias",
    "Signature",
    "RemarkName",
    "RemarkPYQuanPin",
    "Uin",
    "SmallHeadImgUrl",
    "PYInitial",
    "Seq",
    "BigHeadImgUrl",
}


def test_record_has_every_seed_field_and_matches_the_seed_example() -> None:
    raw = RawContact(
        UserName="wxid_8fseov8qf5di22",
        NickName="Nicole_nico'ni",
        Remark="淑萍",
        ContactFlag=3,
        HeadImgUrl="http://wx.qlogo.cn/x/132",
    )
    record = contact_record(raw, "wxid_az12gf9ugnoh22")
    assert set(record) == SEED_FIELDS == set(CONTACT_FIELDS)
    assert record == record | {
        "UserName": "wxid_8fseov8qf5di22",
        "NickName": "Nicole_nico'ni",
        "PYQuanPin": "Nicoleniconi",
        "PYInitial": "NICOLENICONI",
        "Remark": "淑萍",
        "RemarkName": "淑萍",
        "RemarkPYQuanPin": "shuping",
        "RemarkPYInitial": "SP",
        "Seq": "wxid_8fseov8qf5di22",
        "wechatUserName": "wxid_az12gf9ugnoh22",
        "Sex": 0,
        "ChatroomVersion": 0,
        "Uin": 0,
        "MsgType": 2,
        "ContactFlag": 3,
    }


def test_pinyin_from_wechat_is_kept() -> None:
    raw = RawContact(UserName="wxid_x", NickName="重庆", PYQuanPin="chongqing", PYInitial="CQ")
    record = contact_record(raw, "wxid_me")
    assert (record["PYQuanPin"], record["PYInitial"], record["RemarkPYQuanPin"]) == ("chongqing", "CQ", "")


def test_member_record() -> None:
    member = ChatroomMember(UserName="wxid_m", NickName="杨过", InviterUserName="wxid_owner")
    record = member_record(member, "1@chatroom", "wxid_me")
    assert record["ChatRoomName"] == "1@chatroom"
    assert (record["PYQuanPin"], record["PYInitial"], record["wechatUserName"]) == ("yangguo", "YG", "wxid_me")
