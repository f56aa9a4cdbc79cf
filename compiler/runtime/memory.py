"""Static, liveness-based memory planning: intermediate tensors share one arena."""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 64


@dataclass(frozen=True)
class Interval:
    start: int  # index of the step that writes the value
    end: int  # index of the last step that reads it
    nbytes: int


def plan(intervals: list[Interval]) -> tuple[list[int], int]:
    """Byte offsets (one per interval) and the arena size; values alive at the same time
    never overlap. Greedy: largest first, lowest offset that fits."""
    order = sorted(range(len(intervals)), key=lambda i: (-intervals[i].nbytes, i))
    offsets = [0] * len(intervals)
    placed: list[int] = []
    total = 0
    for i in order:
        iv = intervals[i]
        size = _align(max(iv.nbytes, 1))
        busy = sorted(
            (offsets[j], offsets[j] + _align(max(intervals[j].nbytes, 1)))
            for j in placed
            if not (intervals[j].end < iv.start or iv.end < intervals[j].start)
        )
        off = 0
        for lo, hi in busy:
            if off + size <= lo:
                break
            off = max(off, hi)
        offsets[i] = off
        placed.append(i)
        total = max(total, off + size)
    return offsets, total


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
