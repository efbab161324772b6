"""Turning what a Java producer sent into a request: MapMessage (as XStream JSON), TextMessage or BytesMessage of JSON.

Over STOMP with `transformation: jms-map-json`, ActiveMQ hands a MapMessage over in XStream's JSON shape: a string
entry is `{"string": [key, value]}`, a typed one `{"string": key, "long": 18}`, one entry is an object rather than a
list, an empty map is `{"map": ""}`, and a string that looks like a number or boolean loses its quotes. Numbers are
read as their literal text, so a uin such as "1150109773" stays the exact string the producer sent.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from contactq.errors import InvalidRequest


class _Literal(str):
    """A JSON number kept as the text it was written with."""


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_int=_Literal, parse_float=_Literal, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidRequest(f"not JSON: {e}") from e


def decode_request(body: bytes, headers: Mapping[str, str], max_bytes: int) -> dict[str, Any]:
    """The request a STOMP MESSAGE frame carries."""
    if len(body) > max_bytes:
        raise InvalidRequest(f"message of {len(body)} bytes is larger than the {max_bytes} allowed")
    if not body.strip():
        raise InvalidRequest("empty message (a MapMessage read without `transformation: jms-map-json` is empty too)")
    doc = _loads(body)
    if is_map_message(headers, doc):
        return decode_map_message(doc)
    if not isinstance(doc, dict):
        raise InvalidRequest(f"a request is a JSON object, not {type(doc).__name__}")
    try:
        return {key: _plain(value) for key, value in doc.items()}
    except (ValueError, RecursionError) as e:  # a number of thousands of digits, nesting beyond reason
        raise InvalidRequest(f"unreadable JSON value: {e}") from e


def is_map_message(headers: Mapping[str, str], doc: Any) -> bool:
    return headers.get("transformation") == "jms-map-json" and isinstance(doc, dict) and set(doc) == {"map"}


def message_kind(headers: Mapping[str, str], body: bytes) -> str:
    """`map`, `bytes` or `text`: what JMS message a delivered frame was, so that it can be sent on as the same."""
    if "content-length" in headers:
        return "bytes"
    # No parsing: this also serves messages refused for not being JSON at all.
    transformed = headers.get("transformation") == "jms-map-json"
    return "map" if transformed and body.lstrip().startswith(b'{"map"') else "text"


def decode_map_message(doc: Any) -> dict[str, Any]:
    """XStream's JSON of a java.util.Map, as ActiveMQ's jms-map-json transformation writes it."""
    if not isinstance(doc, dict) or set(doc) != {"map"}:
        raise InvalidRequest('a MapMessage is {"map": ...}')
    try:
        return _map(doc["map"])
    except (ValueError, TypeError, AttributeError, RecursionError) as e:  # a value not of its type, or too deep
        raise InvalidRequest(f"malformed map value: {e}") from e


def _map(node: Any) -> dict[str, Any]:
    if node in ("", None):
        return {}
    if not isinstance(node, dict) or "entry" not in node:
        raise InvalidRequest(f"malformed map: {node!r:.200}")
    entries = node["entry"] if isinstance(node["entry"], list) else [node["entry"]]
    return dict(_entry(entry) for entry in entries)


def _entry(entry: Any) -> tuple[str, Any]:
    if isinstance(entry, dict) and len(entry) == 1:
        ((kind, pair),) = entry.items()
        if isinstance(pair, list) and len(pair) == 2:  # key and value of the same type
            return str(pair[0]), _value(kind, pair[1])
    if isinstance(entry, dict) and len(entry) == 2 and isinstance(entry.get("string"), str):
        ((kind, value),) = ((k, v) for k, v in entry.items() if k != "string")
        return str(entry["string"]), _value(kind, value)
    raise InvalidRequest(f"malformed map entry: {entry!r:.200}")


def _value(kind: str, value: Any) -> Any:
    if kind in ("string", "char"):
        # Jettison drops the quotes of "123", "true", "-5": the literal text is the string that was sent.
        if isinstance(value, bool):
            return "true" if value else "false"
        return "null" if value is None else str(value)
    if kind in ("long", "int", "short", "byte"):
        return int(value)
    if kind in ("double", "float", "big-decimal"):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidRequest(f"{value!r} is not a JSON number")
        return number
    if kind == "boolean":
        return value is True or value == "true"
    if kind == "byte-array":
        return base64.b64decode(str(value), validate=True).decode("utf-8", errors="replace")
    if kind == "map":
        return _map(value)
    if kind == "list":
        return [_value(k, v) for k, vs in (value or {}).items() for v in (vs if isinstance(vs, list) else [vs])]
    if kind == "null":
        return None
    raise InvalidRequest(f"a map value of type {kind!r} is not supported")


def _plain(value: Any) -> Any:
    """A JSON value with numbers as numbers again."""
    if isinstance(value, _Literal):
        if not any(c in value for c in ".eE"):
            return int(value)
        number = float(value)
        if not math.isfinite(number):  # 1e400
            raise ValueError(f"{value} is beyond a JSON number")
        return number
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
