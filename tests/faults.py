"""The figures of the fault tests: what each sent, and what came of it, printed as a table at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# kombu's JSON type markers, which its decoder turns into Python objects (or refuses, for an unknown type).
KOMBU_MARKERS: list[Any] = [
    {"__type__": "date", "__value__": "2020-01-01"},
    {"__type__": "datetime", "__value__": "2020-01-01T00:00:00"},
    {"__type__": "bytes", "__value__": "abc"},
    {"__type__": "uuid", "__value__": "00000000-0000-0000-0000-000000000001"},
    {"__type__": "decimal", "__value__": "1.5"},
    {"__type__": "no-such-type", "__value__": 1},
]


@dataclass(frozen=True)
class Figures:
    case: str
    sent: int
    replies: int
    wechat_sends: int | None = None  # friend requests that reached WeChat (the simulated WeChat's verify log)
    dead_letters: int = 0
    tasks: int | None = None  # tasks that reached the Celery broker
    normal_after: int | None = None  # ordinary requests answered after the fault
    recovery_s: float | None = None


RESULTS: list[Figures] = []


def record(figures: Figures, normal_after: int | None = None) -> None:
    RESULTS.append(figures if normal_after is None else replace(figures, normal_after=normal_after))


def table() -> list[str]:
    def cell(value: object) -> str:
        return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)

    head = ("case", "sent", "replies", "WeChat sends", "dead letters", "tasks", "normal after", "recovery s")
    rows = [
        (f.case, f.sent, f.replies, f.wechat_sends, f.dead_letters, f.tasks, f.normal_after, f.recovery_s)
        for f in RESULTS
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines
