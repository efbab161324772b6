"""Where a benchmark's CPU went: each process's user + system time from /proc, over a stretch of the run."""

from __future__ import annotations

import os
from pathlib import Path

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds by part (a name for a process and its children), between `start()` and `stop()`."""

    def __init__(self, parts: dict[str, int]) -> None:
        self.parts = parts
        self._at: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(_cpu_s(p) for p in [pid, *_children(pid)]) for name, pid in self.parts.items()}

    def start(self) -> None:
        self._at = self._now()

    def stop(self) -> dict[str, float]:
        return {name: t - self._at.get(name, 0.0) for name, t in self._now().items()}
