"""Wall-clock budgets for the 🤗 Trainer: parsing, the budget callback and time-based LR schedules.

The paper compares model sizes at equal *wall-clock* cost, so the unit of a budget is seconds, not steps.
"""

from __future__ import annotations

import math
import re
import signal
import threading
import time
from collections import deque
from typing import Callable, Optional, Union

import torch
from torch.optim.lr_scheduler import LRScheduler
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.utils import logging

from .errors import UsageError

logger = logging.get_logger(__name__)

_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")

TIME_SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup")


def parse_duration(value: Union[str, int, float], what: str = "time budget") -> float:
    """Seconds in a duration written as ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2h"`` or plain seconds.

    Raises ``ValueError`` naming the bad value when it is unparsable or not positive.
    """
    if isinstance(value, bool):
        raise UsageError(f"{what} {value!r} is not a duration: use seconds (5400) or units like '90s', '15m', '1h30m'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if not text or match is None or not any(match.groupdict().values()):
                raise UsageError(
                    f"{what} {value!r} is not a duration: use seconds (5400) or units like '90s', '15m', '1h30m'"
                ) from None
            parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
            seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{what} {value!r} must be positive: use e.g. '30s', '15m' or '2h'")
    return seconds


def format_duration(seconds: float) -> str:
    """``3725.0`` -> ``"1h02m05s"``; the inverse of :func:`parse_duration` up to rounding."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


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


class WallClockBudgetCallback(TrainerCallback, ExportableState):
    """Stops a 🤗 ``Trainer`` when a wall-clock budget is spent, then evaluates and saves.

    One monotonic clock, read on the main process after every optimizer step and shared with every rank
    in the same collective, so all ranks stop at the same step. Training stops at the step whose end is
    nearest the deadline: after a step, it stops when the next one (as long as the median of the recent
    ones) would end further past the deadline than now is before it. A size with slow steps thus overshoots
    by at most half a step, not a whole one; ``overshoot`` records by how much (negative: stopped early). The elapsed time travels in each checkpoint
    (``trainer_state.json``), so ``trainer.train(resume_from_checkpoint=...)`` trains only for what is left.
    SIGTERM (preemption) saves a checkpoint and ends training cleanly.

    Args:
        time_budget: seconds, or a string such as ``"90s"``, ``"15m"``, ``"1h30m"``.
        budget_includes_eval: whether time spent evaluating and saving counts against the budget.
        eval_every: evaluate every this many seconds of budget time (``None``: leave it to ``eval_strategy``).
        save_every: save a checkpoint every this many seconds of budget time.
        clock: a function returning seconds; ``time.monotonic`` unless a test passes a fake one.

    Example:

    ```python
    >>> from transformers import Trainer
    >>> from hf_tbc import WallClockBudgetCallback
    >>> budget = WallClockBudgetCallback("15m")
    >>> budget.time_budget
    900.0
    >>> # trainer = Trainer(model, args, train_dataset=..., callbacks=[budget]); trainer.train()
    ```
    """

    def __init__(
        self,
        time_budget: Union[str, float],
        budget_includes_eval: bool = False,
        eval_every: Optional[Union[str, float]] = None,
        save_every: Optional[Union[str, float]] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.time_budget = parse_duration(time_budget)
        self.budget_includes_eval = budget_includes_eval
        self.eval_every = parse_duration(eval_every, "eval_every") if eval_every is not None else None
        self.save_every = parse_duration(save_every, "save_every") if save_every is not None else None
        self.clock = clock
        self.train_seconds_before = 0.0  # restored from a checkpoint
        self.total_seconds_before = 0.0
        self.elapsed = 0.0  # the budget clock as agreed by all ranks at the last sync
        self.stop_reason: Optional[str] = None
        self._running = False
        self._state: Optional[TrainerState] = None  # the Trainer's state: its global_step keys the clock's sync
        self._finishing_step = 0  # the step whose optimizer update ran last (set before global_step counts it)
        self._synced_step: Optional[int] = None  # the step whose clock the last sync read
        self._sigterm_received = False  # set by the signal handler on this process; never cleared mid-run
        self._preempted = False  # the decision every rank agreed on at the last sync
        self._control_group = None  # the process group that carries the clock (gloo: no device sync)
        self._previous_sigterm = None
        self.resumed_at = {"step": 0, "tokens": 0, "train_seconds": 0.0}
        self.overshoot: Optional[float] = None  # budget clock at the stop minus the budget, in seconds
        self._step_seconds: deque[float] = deque(maxlen=16)  # the last steps' durations on the agreed clock
        self._last_elapsed = 0.0

    # -- the clock ---------------------------------------------------------------------------------
    def train_seconds(self) -> float:
        """Training time so far (evaluation and checkpointing excluded), across resumes."""
        if not self._running:
            return self.train_seconds_before
        return self.train_seconds_before + (self._mark - self._start - self._overhead)

    def total_seconds(self) -> float:
        """Wall-clock time since training began, evaluation and checkpointing included, across resumes."""
        if not self._running:
            return self.total_seconds_before
        return self.total_seconds_before + (self.clock() - self._start)

    def budget_seconds(self) -> float:
        """The clock compared with the budget on this process (not yet shared with the other ranks)."""
        return self.total_seconds() if self.budget_includes_eval else self.train_seconds()

    def remaining(self) -> float:
        """Seconds of budget left, as agreed at the last sync."""
        return max(self.time_budget - self.elapsed, 0.0)

    def _current_step(self) -> int:
        """The optimizer step now ending: the one whose update just ran, counted by the Trainer or about to be."""
        counted = self._state.global_step if self._state is not None else 0
        return max(counted, self._finishing_step)

    def fraction(self) -> float:
        """Fraction of the budget spent; syncs the clock when called during training, once per optimizer step
        (the first caller of a step syncs, whether the LR schedule or any callback, and the rest read that)."""
        if self._running and self._synced_step != self._current_step():
            self.sync()
        return min(self.elapsed / self.time_budget, 1.0)

    def sync(self) -> float:
        """Reads the clock on the main process and shares it (and any rank's SIGTERM) with every rank.

        The message travels on a CPU (gloo) group, so with NCCL the per-step decision costs no device
        synchronisation. A SIGTERM that lands while the message is in flight is not lost: the handler's
        flag is never overwritten here, so the next sync carries it, and every rank still decides on the
        same values at the same step.
        """
        self._mark = self.clock()
        elapsed = self.budget_seconds()
        preempted = float(self._sigterm_received)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            is_main = torch.distributed.get_rank() == 0
            shared = torch.tensor([elapsed if is_main else 0.0, preempted], dtype=torch.float64)
            torch.distributed.all_reduce(shared, op=torch.distributed.ReduceOp.SUM, group=self._control_group)
            elapsed, preempted = shared.tolist()
        self.elapsed = elapsed
        self._preempted = preempted > 0
        self._synced_step = self._current_step()
        return elapsed

    def restore_signal_handler(self) -> None:
        """Puts back the SIGTERM handler that was there before training; safe to call more than once."""
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # -- checkpoint state --------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "args": {
                "time_budget": self.time_budget,
                "budget_includes_eval": self.budget_includes_eval,
                "eval_every": self.eval_every,
                "save_every": self.save_every,
            },
            "attributes": {
                "train_seconds_before": self.train_seconds(),
                "total_seconds_before": self.total_seconds(),
            },
        }

    def load_state(self, saved: dict) -> None:
        """Restores the elapsed time written by :meth:`state` into a checkpoint."""
        attributes = saved.get("attributes", {})
        self.train_seconds_before = float(attributes.get("train_seconds_before", 0.0))
        self.total_seconds_before = float(attributes.get("total_seconds_before", 0.0))

    # -- Trainer events ----------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if getattr(args, "restore_callback_states_from_checkpoint", False):
            raise UsageError(
                "restore_callback_states_from_checkpoint=True would replace the budget callback with a copy that the "
                "LR schedule, progress bar and curve do not see: leave it False, the budget restores itself on resume"
            )
        if state.global_step > 0:  # resuming: the Trainer has loaded trainer_state.json from the checkpoint
            self.load_state(state.stateful_callbacks.get(type(self).__name__, {}))
        else:
            self.train_seconds_before = self.total_seconds_before = 0.0
        self.resumed_at = {"step": state.global_step, "tokens": state.num_input_tokens_seen,
                           "train_seconds": self.train_seconds_before}
        self._control_group = _control_group()
        self._state, self._finishing_step, self._synced_step = state, state.global_step, None
        self._start = self._mark = self.clock()
        self._overhead = 0.0
        self._running = True
        self._preempted = self._sigterm_received = False
        self.stop_reason = None
        self.elapsed = self.budget_seconds()
        self.overshoot = None
        self._step_seconds.clear()
        self._last_elapsed = self.elapsed
        self._next_eval = self._next_multiple(self.eval_every)
        self._next_save = self._next_multiple(self.save_every)
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        if state.is_world_process_zero:
            spent = f", {format_duration(self.elapsed)} already spent" if self.elapsed > 0 else ""
            logger.info(f"Wall-clock budget {format_duration(self.time_budget)}{spent}")

    def _next_multiple(self, interval: Optional[float]) -> float:
        if interval is None:
            return math.inf
        return (math.floor(self.elapsed / interval) + 1) * interval

    def _on_sigterm(self, signum, frame) -> None:
        self._sigterm_received = True

    def on_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._finishing_step = state.global_step + 1  # the LR schedule steps next, before global_step counts it

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self._state = state
        if self._synced_step != self._current_step():
            self.sync()
        if self._preempted:
            self.stop_reason = "preempted"
            control.should_save = True
            control.should_training_stop = True
            return control
        self._step_seconds.append(self.elapsed - self._last_elapsed)
        self._last_elapsed = self.elapsed
        if self._deadline_reached():
            self.stop_reason = "time_budget"
            self.overshoot = self.elapsed - self.time_budget
            control.should_log = True
            control.should_evaluate = args.eval_strategy != "no" or self.eval_every is not None
            control.should_save = args.save_strategy != "no" or self.save_every is not None
            control.should_training_stop = True
            return control
        if self.elapsed >= self._next_eval:
            control.should_evaluate = True
            control.should_log = True
            self._next_eval = self._next_multiple(self.eval_every)
        if self.elapsed >= self._next_save:
            control.should_save = True
            self._next_save = self._next_multiple(self.save_every)
        return control

    def step_seconds(self) -> Optional[float]:
        """The median duration of the last 16 steps on the agreed clock (the same on every rank), if any."""
        recent = sorted(self._step_seconds)
        return recent[len(recent) // 2] if recent else None

    def _deadline_reached(self) -> bool:
        if self.elapsed >= self.time_budget:
            return True
        step = self.step_seconds()
        # the next step would end at elapsed + step: stop now if that is further past the deadline than now is before
        # it (on a tie, go on: the budget is then spent, not left unused)
        return step is not None and self.elapsed + step / 2 > self.time_budget

    def _count_overhead(self) -> None:
        now = self.clock()
        self._overhead += now - self._mark
        self._mark = now

    def on_evaluate(self, args, state, control, **kwargs):
        if self._running:
            self._count_overhead()

    def on_save(self, args, state, control, **kwargs):
        if self._running:
            self._count_overhead()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.train_seconds_before = self.train_seconds()
        self.total_seconds_before = self.total_seconds()
        self._running = False
        if self.stop_reason is None:
            self.stop_reason = "max_steps"
        self.restore_signal_handler()


def _control_group():
    """The process group for the budget's control message: the default one when it is already CPU-based
    (gloo), otherwise a gloo group over the same ranks, made once per process group (a collective call)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    if torch.distributed.get_backend() == "gloo":
        return None
    global _GLOO_GROUP
    if _GLOO_GROUP is None or _GLOO_GROUP[0] is not torch.distributed.group.WORLD:
        _GLOO_GROUP = (torch.distributed.group.WORLD, torch.distributed.new_group(backend="gloo"))
    return _GLOO_GROUP[1]


_GLOO_GROUP = None


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
