"""Learning-rate schedules on the budget clock: warmup and decay are fractions of the budget, not of a step count."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..errors import UsageError
from .callback import WallClockBudgetCallback

TIME_SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup")


def lr_multiplier(
    fraction: float, schedule: str = "linear", warmup_fraction: float = 0.0, min_lr_ratio: float = 0.0
) -> float:
    """Learning-rate multiplier at ``fraction`` of the budget (0 = start, 1 = deadline).

    Linear warmup over ``warmup_fraction``, then ``schedule`` decays to ``min_lr_ratio`` exactly at 1.0.
    """
    if schedule not in TIME_SCHEDULES:
        raise UsageError(f"time-based schedule {schedule!r} is unknown: choose one of {', '.join(TIME_SCHEDULES)}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise UsageError(f"warmup fraction {warmup_fraction} must be in [0, 1)")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise UsageError(f"min_lr_ratio {min_lr_ratio} must be in [0, 1]")
    fraction = min(max(fraction, 0.0), 1.0)
    if fraction < warmup_fraction:
        return fraction / warmup_fraction
    if schedule in ("constant", "constant_with_warmup"):
        return 1.0
    progress = (fraction - warmup_fraction) / (1.0 - warmup_fraction)
    decay = 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


class TimeBasedLRScheduler(LRScheduler):
    """An LR schedule driven by the budget clock instead of the step count.

    Warmup and decay are fractions of the budget, and the LR reaches its floor exactly at the deadline,
    however many steps a model size manages. The clock is the one every rank agreed on, so replicas in
    DDP use the same LR.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        budget: WallClockBudgetCallback,
        schedule: str = "linear",
        warmup_fraction: float = 0.0,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ):
        lr_multiplier(0.0, schedule, warmup_fraction, min_lr_ratio)  # validates the arguments early
        self.budget = budget
        self.schedule = schedule
        self.warmup_fraction = warmup_fraction
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        multiplier = lr_multiplier(self.budget.fraction(), self.schedule, self.warmup_fraction, self.min_lr_ratio)
        return [base_lr * multiplier for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "budget")}
