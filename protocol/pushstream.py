"""The changes WeChat pushes to the accounts of one protocol-server child, kept on a Redis stream until acknowledged.

The simulated WeChat appends to it directly; the Gewechat backend's callbacks endpoint appends what a server posts.
Workers read it through `WeChatClient.receive_changes` with a consumer group, so a change taken by a worker that dies
is read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from pydantic import ValidationError

from contactq.errors import redis_errors
from protocol.client import PushedChange

GROUP = "contactq"
ORPHAN_IDLE_MS = 60_000
MAXLEN = 100_000
_BATCH = 100

# A change appended unless its key was seen within the window: the check and the append are one step, so that a
# change is never marked seen without being appended.
_APPEND_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
  return 1
end
return 0
"""


def stream_key(prefix: str, server_id: int, child_id: int) -> str:
    return f"{prefix}push:{server_id}:{child_id}"


def entry(uin: str, kind: str, username: str, content: str = "") -> dict[str, str]:
    """A stream entry's fields: what a `PushedChange` is read back from."""
    fields = {"uin": uin, "kind": kind, "username": username}
    if content:
        fields["content"] = content
    return fields


class PushStreams:
    """The push streams of one server's children under `prefix`, read by one consumer group."""

    def __init__(self, client: redis.Redis, prefix: str, server_id: int, group: str = GROUP) -> None:
        self.r = client
        self.prefix = prefix
        self.server_id = server_id
        self.group = group
        self._groups: set[str] = set()
        self._append_once = client.register_script(_APPEND_ONCE)

    def key(self, child_id: int) -> str:
        return stream_key(self.prefix, self.server_id, child_id)

    def receive(self, child_id: int, consumer: str, block_ms: int) -> list[PushedChange]:
        stream = self.key(child_id)
        with redis_errors("pushed changes"):
            self._ensure_group(stream)
            try:
                entries = self._read(stream, consumer, block_ms)
            except redis.ResponseError as e:
                if "NOGROUP" not in str(e) and "no longer exists" not in str(e):
                    raise
                self._groups.discard(stream)  # the stream was deleted (a reset): the group is made again next time
                return []
        changes = []
        for entry_id, fields in entries:
            try:
                changes.append(PushedChange(id=entry_id, child_id=child_id, **fields))
            except (ValidationError, TypeError):
                # Nothing a task could act on: acknowledged here, so that it does not block the entries after it.
                self.ack(child_id, [entry_id])
        return changes

    def ack(self, child_id: int, ids: Sequence[str]) -> None:
        if ids:
            with redis_errors("pushed changes"):
                self.r.xack(self.key(child_id), self.group, *ids)

    def append_once(self, child_id: int, seen_key: str, window_s: int, fields: dict[str, str]) -> bool:
        """Append a change unless `seen_key` was seen within `window_s`; whether it was appended."""
        flat = [part for pair in fields.items() for part in pair]
        with redis_errors("pushed changes"):
            return bool(self._append_once(keys=[seen_key, self.key(child_id)], args=[window_s, MAXLEN, *flat]))

    def _read(self, stream: str, consumer: str, block_ms: int) -> list[Any]:
        """First what this consumer took and never acknowledged, then what a consumer that is gone left behind for a
        minute, then what is new."""
        entries = self.r.xreadgroup(self.group, consumer, {stream: "0"}, count=_BATCH)
        entries = entries[0][1] if entries else []
        if not entries:
            entries = self.r.xautoclaim(stream, self.group, consumer, min_idle_time=ORPHAN_IDLE_MS, count=_BATCH)[1]
        if not entries:
            replies = self.r.xreadgroup(self.group, consumer, {stream: ">"}, count=_BATCH, block=block_ms)
            entries = replies[0][1] if replies else []
        return list(entries)

    def _ensure_group(self, stream: str) -> None:
        """The consumer group, created once per stream (and again after a reset deleted it: see receive)."""
        if stream in self._groups:
            return
        try:
            self.r.xgroup_create(stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._groups.add(stream)
