import pytest

from contactq.errors import InvalidRequest, Status
from tasks.messages import MAX_DEPTH, Reply, Request, announcement, mask, nested_beyond, parse_request
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


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_is_measured_without_recursion() -> None:
    assert not nested_beyond("scalar", 0)
    assert nested_beyond([], 0) and not nested_beyond([], 1)
    assert not nested_beyond({"a": nested(2)}, 3) and nested_beyond({"a": nested(3)}, 3)
    assert nested_beyond(nested(100_000), MAX_DEPTH)  # far beyond what a recursive walk survives


def test_a_field_nested_beyond_the_limit_is_refused_and_not_echoed() -> None:
    raw = {"adminUserId": 18, "uin": "1", "queueName": "q", "deep": nested(MAX_DEPTH), "fine": nested(MAX_DEPTH - 1)}
    with pytest.raises(InvalidRequest, match=f"deep: nested deeper than {MAX_DEPTH} levels"):
        parse_request(Request, raw)
    assert parse_request(Request, {**raw, "deep": 1}).uin == "1"
    reply = Reply.to(raw, Status.INVALID_REQUEST, "invalid")
    assert "deep" not in reply.document() and reply.document()["fine"] == raw["fine"]
    assert reply.queue_name == "q"
