"""The wall-clock budget callback: any 🤗 ``Trainer`` trains for exactly a budget of seconds, then evaluates and saves.

The paper compares model sizes at equal *wall-clock* cost, so the unit of a budget is seconds, not steps. The
callback puts together the clock (``clock``), the stop rule and evaluation cadence (``stop``), the agreement
across ranks (``agreement``) and preemption (``preemption``).
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Union

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.utils import logging

from ..errors import UsageError
from .agreement import agree, control_group
from .clock import BudgetClock
from .duration import format_duration, parse_duration
from .preemption import SigtermFlag
from .stop import Cadence, NearestStepStop

logger = logging.get_logger(__name__)


class WallClockBudgetCallback(TrainerCallback, ExportableState):
    """Stops a 🤗 ``Trainer`` when a wall-clock budget is spent, then evaluates and saves.

    One monotonic clock, read on the main process after every optimizer step and shared with every rank
    in the same collective, so all ranks stop at the same step. Training stops at the step whose end is
    nearest the deadline: after a step, it stops when the next one (as long as the median of the recent
    ones) would end further past the deadline than now is before it. A size with slow steps thus overshoots
    by at most half a step, not a whole one; ``overshoot`` records by how much (negative: stopped early). The
    elapsed time travels in each checkpoint
    (``trainer_state.json``), so ``trainer.train(resume_from_checkpoint=...)`` trains only for what is left.
    SIGTERM (preemption) saves a checkpoint and ends training cleanly.

    Args:
        time_budget: seconds, or a string such as ``"90s"``, ``"15m"``, ``"1h30m"``.
        budget_includes_eval: whether time spent evaluating and saving counts against the budget.
        eval_every: evaluate every this many seconds of budget time (``None``: leave it to ``eval_strategy``).
        save_every: save a checkpoint every this many seconds of budget time.
        stop_after: end this run early, after this many seconds of the budget, with a checkpoint, while the LR
            schedule and cadences stay those of the whole budget: a probe that is the start of the real run, which
            ``resume_from_checkpoint`` (without ``stop_after``) continues to the deadline. ``stop_reason`` is then
            ``"stop_after"``.
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
        stop_after: Optional[Union[str, float]] = None,
    ):
        self.time_budget = parse_duration(time_budget)
        self.budget_includes_eval = budget_includes_eval
        self.eval_every = parse_duration(eval_every, "eval_every") if eval_every is not None else None
        self.save_every = parse_duration(save_every, "save_every") if save_every is not None else None
        self.stop_after = parse_duration(stop_after, "stop_after") if stop_after is not None else None
        if self.stop_after is not None and self.stop_after >= self.time_budget:
            raise UsageError(
                f"--stop_after {format_duration(self.stop_after)} is not before the end of the "
                f"{format_duration(self.time_budget)} budget: give a shorter one, or leave it out to train the budget"
            )
        self.timer = BudgetClock(clock)
        self.elapsed = 0.0  # the budget clock as agreed by all ranks at the last sync
        self.stop_reason: Optional[str] = None
        self.resumed_at = {"step": 0, "tokens": 0, "train_seconds": 0.0}
        self.overshoot: Optional[float] = None  # budget clock at the stop minus the budget, in seconds
        self._stop = NearestStepStop(self.time_budget)
        self._evaluations, self._saves = Cadence(self.eval_every), Cadence(self.save_every)
        self._sigterm = SigtermFlag()
        self._preempted = False  # the decision every rank agreed on at the last sync
        self._control_group = None  # the process group that carries the clock (gloo: no device sync)
        self._state: Optional[TrainerState] = None  # the Trainer's state: its global_step keys the clock's sync
        self._finishing_step = 0  # the step whose optimizer update ran last (set before global_step counts it)
        self._synced_step: Optional[int] = None  # the step whose clock the last sync read
        self._resuming = False  # between a resumed run's start and its first step: nothing trains yet

    # -- the clock ---------------------------------------------------------------------------------
    @property
    def clock(self) -> Callable[[], float]:
        return self.timer.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.timer.clock = clock

    @property
    def train_seconds_before(self) -> float:
        return self.timer.train_seconds_before

    @property
    def total_seconds_before(self) -> float:
        return self.timer.total_seconds_before

    def train_seconds(self) -> float:
        """Training time so far (evaluation and checkpointing excluded), across resumes."""
        return self.timer.train_seconds()

    def total_seconds(self) -> float:
        """Wall-clock time since training began, evaluation and checkpointing included, across resumes."""
        return self.timer.total_seconds()

    def budget_seconds(self) -> float:
        """The clock compared with the budget on this process (not yet shared with the other ranks)."""
        return self.total_seconds() if self.budget_includes_eval else self.train_seconds()

    def remaining(self) -> float:
        """Seconds of budget left, as agreed at the last sync."""
        return max(self.time_budget - self.elapsed, 0.0)

    def step_seconds(self) -> Optional[float]:
        """The median duration of the last 16 steps on the agreed clock (the same on every rank), if any."""
        return self._stop.step_seconds()

    def _current_step(self) -> int:
        """The optimizer step now ending: the one whose update just ran, counted by the Trainer or about to be."""
        counted = self._state.global_step if self._state is not None else 0
        return max(counted, self._finishing_step)

    def fraction(self) -> float:
        """Fraction of the budget spent; syncs the clock when called during training, once per optimizer step
        (the first caller of a step syncs, whether the LR schedule or any callback, and the rest read that)."""
        if self.timer.running and self._synced_step != self._current_step():
            self.sync()
        return min(self.elapsed / self.time_budget, 1.0)

    def sync(self) -> float:
        """Reads the clock on the main process and shares it (and any rank's SIGTERM) with every rank, so
        every rank decides on the same values at the same step."""
        self.timer.mark()
        self.elapsed, self._preempted = agree(self.budget_seconds(), self._sigterm.received, self._control_group)
        self._synced_step = self._current_step()
        return self.elapsed

    def restore_signal_handler(self) -> None:
        """Puts back the SIGTERM handler that was there before training; safe to call more than once."""
        self._sigterm.restore()

    def _on_sigterm(self, signum, frame) -> None:
        self._sigterm.handle(signum, frame)

    # -- checkpoint state --------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "args": {
                "time_budget": self.time_budget,
                "budget_includes_eval": self.budget_includes_eval,
                "eval_every": self.eval_every,
                "save_every": self.save_every,
            },
            "attributes": {"train_seconds_before": self.train_seconds(), "total_seconds_before": self.total_seconds()},
        }

    def load_state(self, saved: dict) -> None:
        """Restores the elapsed time written by :meth:`state` into a checkpoint."""
        attributes = saved.get("attributes", {})
        self.timer.train_seconds_before = float(attributes.get("train_seconds_before", 0.0))
        self.timer.total_seconds_before = float(attributes.get("total_seconds_before", 0.0))

    # -- Trainer events ----------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if getattr(args, "restore_callback_states_from_checkpoint", False):
            raise UsageError(
                "restore_callback_states_from_checkpoint=True would replace the budget callback with a copy that the "
                "LR schedule, progress bar and curve do not see: leave it False, the budget restores itself on resume"
            )
        if state.global_step > 0:  # resuming: the Trainer has loaded trainer_state.json from the checkpoint
            self.load_state(state.stateful_callbacks.get(type(self).__name__, {}))
            before = (self.train_seconds_before, self.total_seconds_before)
        else:
            before = (0.0, 0.0)
        self.resumed_at = {"step": state.global_step, "tokens": state.num_input_tokens_seen, "train_seconds": before[0]}
        self._control_group = control_group()
        self._state, self._finishing_step, self._synced_step = state, state.global_step, None
        self.timer.start(*before)
        self._resuming = state.global_step > 0
        self._preempted = False
        self.stop_reason = None
        self.elapsed = self.budget_seconds()
        self.overshoot = None
        self._stop.reset(self.elapsed)
        self._evaluations.reset(self.elapsed)
        self._saves.reset(self.elapsed)
        self._sigterm.install()
        if state.is_world_process_zero:
            spent = f", {format_duration(self.elapsed)} already spent" if self.elapsed > 0 else ""
            logger.info(f"Wall-clock budget {format_duration(self.time_budget)}{spent}")

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self._resuming:
            # The Trainer fast-forwards the data past the steps already trained before the first step begins: for a
            # stream that means reading, tokenizing and packing them again. That is not training, so neither the
            # budget nor the time-based LR schedule moves while it runs.
            self._resuming = False
            skipped = self.clock() - self.timer.started_at
            self.timer.restart()
            self.elapsed = self.budget_seconds()
            if state.is_world_process_zero and skipped >= 1.0:
                logger.info(
                    f"Resumed at step {state.global_step} after {format_duration(round(skipped))} of "
                    "fast-forwarding the data, not counted against the budget"
                )

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
        self._stop.record(self.elapsed)
        if (
            self.stop_after is not None
            and self.elapsed < self.time_budget
            and self._stop.reached(self.elapsed, self.stop_after)
        ):
            self.stop_reason = "stop_after"
            control.should_log = True
            control.should_evaluate = args.eval_strategy != "no" or self.eval_every is not None
            control.should_save = True  # the checkpoint the rest of the budget resumes from
            control.should_training_stop = True
            return control
        if self._stop.reached(self.elapsed):
            self.stop_reason = "time_budget"
            self.overshoot = self.elapsed - self.time_budget
            control.should_log = True
            control.should_evaluate = args.eval_strategy != "no" or self.eval_every is not None
            # a run that keeps its best evaluation saves the last step only if that one is the best
            periodic = args.save_strategy != "no" and not getattr(args, "save_on_best", False)
            control.should_save = periodic or self.save_every is not None
            control.should_training_stop = True
            return control
        if self._evaluations.due(self.elapsed):
            control.should_evaluate = True
            control.should_log = True
        if self._saves.due(self.elapsed):
            control.should_save = True
        return control

    def on_evaluate(self, args, state, control, **kwargs):
        if self.timer.running:
            self.timer.count_overhead()

    def on_save(self, args, state, control, **kwargs):
        if self.timer.running:
            self.timer.count_overhead()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        self.timer.stop()
        if self.stop_reason is None:
            self.stop_reason = "max_steps"
        self.restore_signal_handler()
