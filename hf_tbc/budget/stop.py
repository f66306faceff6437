"""When to stop and when to evaluate: the step nearest the deadline, and intervals of budget time."""

from __future__ import annotations

import math
from collections import deque
from typing import Optional


class NearestStepStop:
    """Stops at the optimizer step whose end is nearest the deadline.

    After each step it estimates the next one as the median of the last ``window`` steps on the agreed clock,
    and stops when that step would end further past the deadline than now is before it (on a tie it goes on:
    the budget is then spent, not left unused). A size with slow steps thus overshoots by at most half a step.
    """

    def __init__(self, time_budget: float, window: int = 16):
        self.time_budget = time_budget
        self._steps: deque[float] = deque(maxlen=window)
        self._last = 0.0

    def reset(self, elapsed: float) -> None:
        self._steps.clear()
        self._last = elapsed

    def record(self, elapsed: float) -> None:
        """Counts the step that ended at ``elapsed`` seconds of budget."""
        self._steps.append(elapsed - self._last)
        self._last = elapsed

    def step_seconds(self) -> Optional[float]:
        recent = sorted(self._steps)
        return recent[len(recent) // 2] if recent else None

    def reached(self, elapsed: float, deadline: Optional[float] = None) -> bool:
        """Whether to stop after the step that ended at ``elapsed``: at the budget, or at an earlier ``deadline``."""
        deadline = self.time_budget if deadline is None else deadline
        if elapsed >= deadline:
            return True
        step = self.step_seconds()
        return step is not None and elapsed + step / 2 > deadline


class Cadence:
    """Fires every ``interval`` seconds of budget (never when ``interval`` is None)."""

    def __init__(self, interval: Optional[float]):
        self.interval = interval
        self._next = math.inf

    def reset(self, elapsed: float) -> None:
        self._next = self._following(elapsed)

    def _following(self, elapsed: float) -> float:
        if self.interval is None:
            return math.inf
        return (math.floor(elapsed / self.interval) + 1) * self.interval

    def due(self, elapsed: float) -> bool:
        """Whether an interval ended by ``elapsed``; if so, the next one starts counting."""
        if elapsed < self._next:
            return False
        self._next = self._following(elapsed)
        return True
