"""Learning-rate schedules on the budget clock: warmup and decay are fractions of the budget, not of a step count;
a floor on warmup in steps keeps a size that makes few steps in the budget from meeting the peak LR almost at once."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..errors import UsageError
from .callback import WallClockBudgetCallback

TIME_SCHEDULES = ("warmup_stable_decay", "linear", "cosine", "constant", "constant_with_warmup")
DECAY_RATIO = 0.2  # warmup_stable_decay: the last share of the budget over which the LR falls


def lr_multiplier(
    fraction: float,
    schedule: str = "linear",
    warmup_fraction: float = 0.0,
    min_lr_ratio: float = 0.0,
    decay_fraction: float = DECAY_RATIO,
) -> float:
    """Learning-rate multiplier at ``fraction`` of the budget (0 = start, 1 = deadline).

    Linear warmup over ``warmup_fraction``, then ``schedule`` decays to ``min_lr_ratio`` exactly at 1.0;
    ``warmup_stable_decay`` holds the peak until the last ``decay_fraction`` of the budget and decays linearly over
    it (Hägele et al. 2024), so that the run up to any point before its decay is the start of a shorter run too.
    """
    if schedule not in TIME_SCHEDULES:
        raise UsageError(f"time-based schedule {schedule!r} is unknown: choose one of {', '.join(TIME_SCHEDULES)}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise UsageError(f"warmup fraction {warmup_fraction} must be in [0, 1)")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise UsageError(f"min_lr_ratio {min_lr_ratio} must be in [0, 1]")
    if not 0.0 < decay_fraction <= 1.0:
        raise UsageError(f"--decay_ratio {decay_fraction} must be in (0, 1]")
    fraction = min(max(fraction, 0.0), 1.0)
    if fraction < warmup_fraction:
        return fraction / warmup_fraction
    if schedule in ("constant", "constant_with_warmup"):
        return 1.0
    if schedule == "warmup_stable_decay":
        start = max(1.0 - decay_fraction, warmup_fraction)
        if fraction < start:
            return 1.0
        return min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 - fraction) / (1.0 - start)
    progress = (fraction - warmup_fraction) / (1.0 - warmup_fraction)
    decay = 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def cooled(multiplier: float, fraction: float, start: float, end: float, at_start: float) -> float:
    """A cool-down over ``[start, end]`` (fractions of the budget) on top of a schedule: ``multiplier`` before
    ``start``; from there the schedule's value at ``start``, ``at_start``, falling linearly to zero at ``end``."""
    if fraction < start:
        return multiplier
    return at_start * max(0.0, (end - fraction) / (end - start)) if end > start else 0.0


def step_warmup(steps_done: int, warmup_steps: int) -> float:
    """The cap a warmup of ``warmup_steps`` optimizer steps puts on the LR multiplier before step ``steps_done + 1``:
    it rises linearly to 1 at the last warmup step (0: no cap)."""
    if warmup_steps < 0:
        raise UsageError(f"--warmup_steps {warmup_steps} must be >= 0")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, (steps_done + 1) / warmup_steps)


class TimeBasedLRScheduler(LRScheduler):
    """An LR schedule driven by the budget clock instead of the step count.

    Warmup and decay are fractions of the budget, and the LR reaches its floor exactly at the deadline,
    however many steps a model size manages. The clock is the one every rank agreed on, so replicas in
    DDP use the same LR. ``warmup_steps`` adds a ramp in optimizer steps: the LR is the lower of the two, so
    warmup lasts the longer of ``warmup_fraction`` of the budget and ``warmup_steps`` steps, and the decay still
    ends at the deadline.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        budget: WallClockBudgetCallback,
        schedule: str = "linear",
        warmup_fraction: float = 0.0,
        min_lr_ratio: float = 0.0,
        warmup_steps: int = 0,
        cooldown: Optional[tuple[float, float]] = None,
        decay_fraction: float = DECAY_RATIO,
        last_epoch: int = -1,
    ):
        lr_multiplier(0.0, schedule, warmup_fraction, min_lr_ratio, decay_fraction)  # validates the arguments early
        self.decay_fraction = decay_fraction
        step_warmup(0, warmup_steps)
        self.warmup_steps = warmup_steps
        self.budget = budget
        self.schedule = schedule
        self.warmup_fraction = warmup_fraction
        self.min_lr_ratio = min_lr_ratio
        self.cooldown = cooldown
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        fraction = self.budget.fraction()
        shape = (self.schedule, self.warmup_fraction, self.min_lr_ratio, self.decay_fraction)
        multiplier = lr_multiplier(fraction, *shape)
        if self.cooldown is not None:
            start, end = self.cooldown
            at_start = lr_multiplier(start, *shape)
            multiplier = cooled(multiplier, fraction, start, end, at_start)
        multiplier = min(multiplier, step_warmup(self.last_epoch, self.warmup_steps))
        return [base_lr * multiplier for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        # the budget and a cool-down are this run's settings: a branch resumed from a checkpoint keeps its own
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "budget", "cooldown")}
