import pytest

from contactq.errors import InvalidRequest, Status
from tasks.messages import Reply, Request, announcement, mask, parse_request
from tasks.search_contact import Found


class Sample(Request):
    userName: str


def test_loginer_and_admin_user_id_are_the_same_thing() -> None:
    assert parse_request(Sample, {"adminUserId": "18", "uin": 1150109773, "userName": "x"}).loginer == 18
    parsed = parse_request(Sample, {"loginer": 18, "uin": "1150109773", "userName": "x", "extra": [1]})
    assert (parsed.loginer, parsed.uin, parsed.model_extra) == (18, "1150109773", {"extra": [1]})


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"uin": "1", "userName": "x"}, "loginer"),
        ({"loginer": 18, "userName": "x"}, "uin"),
        ({"loginer": "eighteen", "uin": "1", "userName": "x"}, "loginer"),
        ({"loginer": 18, "uin": "", "userName": "x"}, "uin"),
        ("not a map", "JSON object"),
    ],
)
def test_invalid_requests_say_what_is_wrong(raw: object, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        parse_request(Sample, raw)


def test_reply_echoes_the_request_unchanged() -> None:
    raw = {"adminUserId": 18, "uin": "1", "userName": "x", "queueName": "q", "status": "ignored"}
    assert Reply.to(raw, Status.OK, "", Found(user_name="v1")).document() == {
        "adminUserId": 18,
        "uin": "1",
        "userName": "x",
        "queueName": "q",
        "status": 0,
        "message": "",
        "user_name": "v1",
        "stranger": "",
        "nick_name": "",
        "small_head": "",
        "quan_pin": "",
    }
    assert Reply.to("garbage", Status.INVALID_REQUEST, "bad").document() == {"status": 400, "message": "bad"}


def test_a_failed_reply_carries_every_result_field_of_its_operation_empty() -> None:
    raw = {"adminUserId": 18, "uin": "1", "userName": "x", "queueName": "q"}
    document = Reply.to(raw, Status.NOT_FOUND, "no such user", Found()).document()
    assert {k: document[k] for k in ("user_name", "stranger", "nick_name", "small_head", "quan_pin")} == dict.fromkeys(
        ("user_name", "stranger", "nick_name", "small_head", "quan_pin"), ""
    )
    assert (document["status"], document["queueName"]) == (404, "q")


def test_event_payload_is_the_seed_shape() -> None:
    a = announcement("modcontact", "1150109773", "wxid_az12gf9ugnoh22", 18, "wxid_8fseov8qf5di22")
    assert a.event.model_dump() == {
        "uin": "1150109773",
        "userName": "wxid_az12gf9ugnoh22",
        "loginer": "18",
        "field": "wxid_8fseov8qf5di22",
        "mqType": 3,
        "source": "ipad",
    }
    assert [announcement(k, "1", "w", 1, "f").event.mqType for k in ("getcontact", "delcontact", "chatroommember")] == [
        7,
        4,
        5,
    ]


def test_mask_hides_tickets_and_session_data() -> None:
    text = repr(
        {
            "v1": "v1_abcdef0123@stranger",
            "v2": "v2_99887766@stranger",
            "wechatUser": '{"pwd": "x"}',
            "userName": "v1_b164fe39f737@stranger",
            "verify": "hello",
            "uin": "1150109773",
        }
    )
    masked = mask(text)
    for secret in ("abcdef0123", "99887766", "pwd", "b164fe39f737"):
        assert secret not in masked
    assert "'verify': 'hello'" in masked and "1150109773" in masked
    assert mask('{"verifyUserTicket": "v2_0e2e4a9a7aa9@stranger"}') == '{"verifyUserTicket": "***"}'
