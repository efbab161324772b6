"""Decoding what Java producers send, from the wire shapes observed on ActiveMQ 5.17 with Spring's JmsTemplate."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.decode import decode_request, message_kind
from contactq.errors import InvalidRequest

MAP = {"transformation": "jms-map-json"}


def decode(body: str, headers: dict[str, str] = MAP, max_bytes: int = 65536) -> dict[str, Any]:
    return decode_request(body.encode(), headers, max_bytes)


def test_hashmap_of_a_search_request() -> None:
    body = (
        '{"map":{"entry":[{"string":"adminUserId","long":18},{"string":["queueName","queue.reply.search"]},'
        '{"string":["uin",1150109773]},{"string":["userName","someone"]}]}}'
    )
    assert decode(body) == {
        "adminUserId": 18,
        "queueName": "queue.reply.search",
        "uin": "1150109773",
        "userName": "someone",
    }


def test_nested_map_and_integer() -> None:
    body = (
        '{"map":{"entry":[{"string":"count","int":42},{"string":["name","third"]},{"string":"nested","map":'
        '{"entry":[{"string":"innerLong","long":7},{"string":["innerKey","innerVal"]}]}}]}}'
    )
    assert decode(body) == {"count": 42, "name": "third", "nested": {"innerLong": 7, "innerKey": "innerVal"}}


def test_one_entry_is_an_object_not_a_list() -> None:
    assert decode('{"map":{"entry":{"string":["onlyKey","onlyValue"]}}}') == {"onlyKey": "onlyValue"}
    assert decode('{"map":{"entry":{"string":"adminUserId","long":18}}}') == {"adminUserId": 18}


def test_empty_map() -> None:
    assert decode('{"map":""}') == {}


def test_other_types() -> None:
    body = (
        '{"map":{"entry":[{"string":"d","double":3.25},{"string":"s","short":5},{"string":"b","boolean":true},'
        '{"string":"big","long":9007199254740993},{"string":"bytes","byte-array":"AQID"},'
        '{"string":"l","list":{"string":"a","int":1,"long":2}}]}}'
    )
    decoded = decode(body)
    assert decoded["d"] == 3.25 and decoded["s"] == 5 and decoded["b"] is True
    assert decoded["big"] == 9007199254740993  # beyond 2**53, exact
    assert decoded["bytes"] == "\x01\x02\x03"
    assert sorted(map(str, decoded["l"])) == ["1", "2", "a"]


@pytest.mark.parametrize(
    ("literal", "sent"),
    [
        ("1150109773", "1150109773"),
        ("true", "true"),
        ("-5", "-5"),
        ("12345678901234567890", "12345678901234567890"),
        ('"00123"', "00123"),
        ('"12.50"', "12.50"),
        ('"1e5"', "1e5"),
        ('"null"', "null"),
        ('""', ""),
    ],
)
def test_strings_that_lost_their_quotes_come_back_as_sent(literal: str, sent: str) -> None:
    assert decode(f'{{"map":{{"entry":{{"string":["v",{literal}]}}}}}}') == {"v": sent}


def test_text_and_bytes_messages_of_json() -> None:
    body = '{"loginer": 18, "uin": "1150109773", "opcode": "3", "type": 30, "nested": {"x": 1.5}}'
    expected = {"loginer": 18, "uin": "1150109773", "opcode": "3", "type": 30, "nested": {"x": 1.5}}
    assert decode(body, {}) == expected
    assert decode(body, {"content-length": str(len(body))}) == expected
    # A TextMessage that merely looks like XStream's map stays what it is.
    assert decode('{"map": ""}', {}) == {"map": ""}


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        ("", MAP, "empty message"),
        ("not json", {}, "not JSON"),
        ("[1, 2]", {}, "JSON object"),
        ('{"map":{"entry":[{"string":"a","long":1,"int":2}]}}', MAP, "malformed map entry"),
        ('{"map":{"entry":{"string":"a","widget":1}}}', MAP, "not supported"),
        ('{"map":{"nope":1}}', MAP, "malformed map"),
        ('{"map":{"entry":{"string":"n","long":"eighteen"}}}', MAP, "malformed map value"),
        ('{"map":{"entry":{"string":"b","byte-array":"%%%"}}}', MAP, "malformed map value"),
        ('{"map":{"entry":{"string":"l","list":[1]}}}', MAP, "malformed map value"),
        ('{"uin": "' + "x" * 100 + '"}', {}, "larger than"),
    ],
)
def test_bad_input_says_why(body: str, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        decode(body, headers, max_bytes=64)


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not JSON"):
        decode_request(b'{"uin": "\xff\xfe"}', {}, 1000)


def test_deeply_nested_json_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not JSON"):
        decode_request(b"[" * 50_000, {}, 65536)


def test_message_kind_for_sending_on_as_the_same() -> None:
    assert message_kind(MAP, b'{"map":""}') == "map"
    assert message_kind(MAP, b'{"uin": "1"}') == "text"  # a TextMessage read through the transformation
    assert message_kind({}, b'{"map":""}') == "text"
    assert message_kind({"content-length": "3"}, b"abc") == "bytes"
    assert message_kind(MAP, b"[" * 50_000) == "text"


@pytest.mark.parametrize("body", ['{"uin": NaN}', '{"uin": Infinity}', '{"a": [-Infinity]}'])
def test_constants_that_are_not_json_are_refused(body: str) -> None:
    with pytest.raises(InvalidRequest, match="not a JSON value"):
        decode(body, {})


def test_a_map_number_that_is_not_finite_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not a JSON number"):
        decode('{"map":{"entry":{"string":"score","double":"NaN"}}}')


def test_a_number_beyond_json_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="beyond a JSON number"):
        decode('{"uin": "1", "n": 1e400}', {})
