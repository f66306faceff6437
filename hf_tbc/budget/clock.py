"""The budget's clock: training time (evaluation and checkpointing left out) and total time, across resumes."""

from __future__ import annotations

import time
from typing import Callable


class BudgetClock:
    """Two monotonic clocks over one training run and the runs it resumes.

    ``train_seconds`` leaves out the overhead marked by :meth:`count_overhead` (evaluation, checkpoint saves);
    ``total_seconds`` counts everything since training began. ``*_before`` hold what earlier runs spent.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.train_seconds_before = 0.0
        self.total_seconds_before = 0.0
        self.running = False
        self._start = self._mark = 0.0
        self._overhead = 0.0

    def start(self, train_seconds_before: float = 0.0, total_seconds_before: float = 0.0) -> None:
        self.train_seconds_before, self.total_seconds_before = train_seconds_before, total_seconds_before
        self.restart()
        self.running = True

    def restart(self) -> None:
        """Starts this run's count again from now, keeping what earlier runs spent: time before the first step of a
        resumed run (loading the checkpoint, fast-forwarding the data past what was trained on) is not spent on
        training."""
        self._start = self._mark = self.clock()
        self._overhead = 0.0

    def stop(self) -> None:
        self.train_seconds_before, self.total_seconds_before = self.train_seconds(), self.total_seconds()
        self.running = False

    @property
    def started_at(self) -> float:
        """The clock's reading when this run started."""
        return self._start

    def mark(self) -> float:
        """Reads the clock; training time runs up to the last mark."""
        self._mark = self.clock()
        return self._mark

    def count_overhead(self) -> None:
        """Counts the time since the last mark as overhead (not training)."""
        now = self.clock()
        self._overhead += now - self._mark
        self._mark = now

    def train_seconds(self) -> float:
        if not self.running:
            return self.train_seconds_before
        return self.train_seconds_before + (self._mark - self._start - self._overhead)

    def total_seconds(self) -> float:
        if not self.running:
            return self.total_seconds_before
        return self.total_seconds_before + (self.clock() - self._start)
