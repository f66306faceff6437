"""A probe: the first seconds of one size's run on the whole budget's schedule, as its records and curve say."""

from __future__ import annotations

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
        """The step where the logged LR peaked: the end of warmup (0 if no LR was logged)."""
        return max(self.learning_rates, key=lambda row: row[1])[0] if self.learning_rates else 0

    def past_warmup(self) -> bool:
        """Whether the LR peaked in the probe's first half: a probe still warming up says little of how a size
        learns."""
        return self.steps >= 2 * max(self.warmup_end(), 1)

    def warmup_end_s(self) -> float:
        """The training seconds at the end of warmup (0 if no LR was logged)."""
        step = self.warmup_end()
        times = [seconds for logged, seconds, _ in self.losses if logged >= step]
        return times[0] if step and times else 0.0
