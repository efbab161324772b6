"""Where a benchmark's CPU went: the user + system time of each part's processes from /proc, over a stretch of a run."""

from __future__ import annotations

import os
from pathlib import Path

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone, or none (0)
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds by part (a name for some processes), between `start()` and `stop()`."""

    def __init__(self) -> None:
        self.parts: dict[str, list[int]] = {}
        self._at: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(cpu_s(pid) for pid in pids) for name, pids in self.parts.items()}

    def start(self) -> None:
        self._at = self._now()

    def stop(self) -> dict[str, float]:
        return {name: t - self._at.get(name, 0.0) for name, t in self._now().items()}
