"""A probe: the first seconds of one size's run on the whole budget's schedule, as its records and curve say."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..errors import UsageError


@dataclass
class Probe:
    """One size's probe: its record and the curve it logged (``losses``: training loss rows ``(step, train_s,
    loss)``; ``evaluations``: ``(step, train_s, eval_loss)``)."""

    size: str
    steps: int
    train_s: float
    budget_s: float
    probe_s: float
    losses: list[tuple[int, float, float]]
    evaluations: list[tuple[int, float, float]] = field(default_factory=list)
    learning_rates: list[tuple[int, float]] = field(default_factory=list)
    parameters: Optional[int] = None
    unigram_loss: Optional[float] = None
    checkpoint: Optional[str] = None
    warmup_steps: int = 0  # the run's warmup floor in optimizer steps (--warmup_steps)
    warmup_ratio: float = 0.0  # and its share of the budget (--warmup_ratio)

    def step_seconds(self) -> float:
        """Seconds per step over the later half of the probe: its first steps are slower (kernels are built for
        each new shape as it first comes), which a long run pays once and a short probe would count again and
        again. Falls back to the whole probe after its first logged row, then to the whole probe."""
        if self.steps <= 0:
            raise UsageError(f"the {self.size} probe made no optimizer step: give it a longer --probe_budget")
        rows = [(step, seconds) for step, seconds, _ in self.losses if step < self.steps]
        later = [row for row in rows if row[0] >= self.steps / 2]
        for start in (later[:1], rows[:1]):
            if start and self.train_s > start[0][1]:
                step, seconds = start[0]
                return (self.train_s - seconds) / (self.steps - step)
        return self.train_s / self.steps

    def steps_at(self, budget_s: float) -> float:
        """Optimizer steps this size makes in ``budget_s`` of training on this machine."""
        return self.steps + max(budget_s - self.train_s, 0.0) / self.step_seconds()

    def final_eval(self) -> Optional[float]:
        return self.evaluations[-1][2] if self.evaluations else None

    def warmup_end(self) -> int:
        """The step where warmup ended (0 if no LR was logged): the first logged step at the peak LR, or, where the
        two logged steps before it were still rising, the step their ramp reaches the peak (the log may be sparse:
        a first logged peak ten steps after the ramp's end would ask a probe to run twenty steps more than it needs).
        """
        if not self.learning_rates:
            return 0
        peak = max(rate for _, rate in self.learning_rates)
        first = next(step for step, rate in self.learning_rates if rate >= peak * (1 - 1e-6))
        rising = [(step, rate) for step, rate in self.learning_rates if step < first]
        if len(rising) >= 2 and first < self.learning_rates[-1][0]:  # the peak held after it: warmup is over
            (step0, rate0), (step1, rate1) = rising[-2:]
            if rate1 > rate0 and step1 > step0:
                reached = step1 + (peak - rate1) * (step1 - step0) / (rate1 - rate0)
                return min(first, math.ceil(reached - 1e-9))
        return first

    def past_warmup(self) -> bool:
        """Whether the LR peaked in the probe's first half: a probe still warming up says little of how a size
        learns."""
        return self.steps >= 2 * max(self.warmup_end(), 1)

    def past_warmup_s(self) -> float:
        """About how many seconds of training this size needs before :meth:`past_warmup` holds: where its warmup
        ended inside the probe, until twice that step at its step time; where its LR was still rising at the end,
        twice the longer of the probe and its warmup by its settings (``warmup_ratio`` of the budget,
        ``warmup_steps`` steps)."""
        end = self.warmup_end()
        if self.learning_rates and end < self.learning_rates[-1][0]:
            return self.train_s + max(2 * end - self.steps, 0) * self.step_seconds()
        return 2.0 * max(self.warmup_ratio * self.budget_s, self.warmup_steps * self.step_seconds(), self.train_s)

    def warmup_end_s(self) -> float:
        """The training seconds at the end of warmup (0 if no LR was logged)."""
        step = self.warmup_end()
        times = [seconds for logged, seconds, _ in self.losses if logged >= step]
        return times[0] if step and times else 0.0
