"""The serializer of requests and replies: kombu's type markers are data, and what goes in comes out."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from kombu.serialization import dumps as kombu_dumps
from kombu.serialization import loads as kombu_loads

from tasks import plainjson
from tests.faults import KOMBU_MARKERS

MARKERS: list[Any] = [*KOMBU_MARKERS, {"deep": [{"__type__": "time", "__value__": "10:00:00"}]}]


@pytest.mark.parametrize("value", MARKERS)
def test_a_type_marker_is_data(value: Any) -> None:
    plainjson.register_serializer()
    request = {"adminUserId": 18, "uin": "1", "field": value}
    content_type, encoding, body = kombu_dumps(request, serializer=plainjson.NAME)
    assert kombu_loads(body, content_type, encoding, accept=[plainjson.CONTENT_TYPE]) == request


def test_what_a_python_caller_puts_in_goes_out() -> None:
    when, key = datetime.date(2020, 1, 2), uuid.UUID(int=7)
    assert plainjson.loads(plainjson.dumps({"when": when, "key": key})) == {
        "when": {"__type__": "date", "__value__": "2020-01-02"},
        "key": {"__type__": "uuid", "__value__": {"hex": key.hex}},
    }
    assert plainjson.dumps({"s": "\ud800"}) == '{"s":"\\ud800"}'  # a lone surrogate still encodes
    with pytest.raises(ValueError):
        plainjson.dumps({"n": float("nan")})
