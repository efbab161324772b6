"""The serializer of every request, reply and event: plain JSON, decoded by the standard library alone.

kombu's own `json` turns any object shaped like its type markers (`{"__type__": "date", "__value__": ...}`) into a
Python object when it decodes, so a request holding such an object would not come back as it was sent, and its reply
could not be encoded again. Here a marker is data like any other. Encoding still takes what a Python caller may put in
a request (a date, a UUID, a Decimal) the way kombu does, so no caller's message fails to go out.
"""

from __future__ import annotations

import json
from typing import Any

from kombu.serialization import register
from kombu.utils.json import JSONEncoder

NAME = "contactq-json"
CONTENT_TYPE = "application/x-contactq-json"


def dumps(value: Any) -> str:
    # ASCII with \u escapes: any string a request carried, a lone surrogate included, encodes; NaN is not JSON.
    return json.dumps(value, cls=JSONEncoder, separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text)


def register_serializer() -> None:
    register(NAME, dumps, loads, content_type=CONTENT_TYPE, content_encoding="utf-8")
