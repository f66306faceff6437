"""Wall-clock budgets for the 🤗 Trainer: parsing (``duration``), the clock (``clock``) and stop rule (``stop``),
agreement across ranks (``agreement``), preemption (``preemption``), the callback that joins them (``callback``),
and time-based LR schedules (``schedules``)."""

from .callback import WallClockBudgetCallback
from .duration import format_duration, parse_duration
from .preemption import PREEMPTED_EXIT_CODE
from .schedules import TIME_SCHEDULES, TimeBasedLRScheduler, lr_multiplier

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "TIME_SCHEDULES",
    "TimeBasedLRScheduler",
    "WallClockBudgetCallback",
    "format_duration",
    "lr_multiplier",
    "parse_duration",
]
