"""Gradual pruning: sparsity rises on a cubic schedule during finetuning, the masks held after every step.

Zhu & Gupta (2017), "To prune, or not to prune": ``s(t) = s_f * (1 - (1 - t')**3)`` with ``t'`` the progress
through the pruning window, so most weights go early, while the model still has time to recover, and the last
ones slowly. After the window the masks stay fixed and training goes on: that is the recovery.

The callback drives any *pruner* with four methods: ``observe()`` (gradients are present: before each optimizer
step), ``prune_to(sparsity)`` (raise pruning to that level), ``enforce()`` (re-apply masks after each optimizer
step) and ``finish()`` (make the final model, return a report).
:class:`~hf_tbc.compress.unstructured.UnstructuredPruner`
and :class:`~hf_tbc.compress.structured.StructuredPruner` are two.
"""

from __future__ import annotations

from typing import Callable, Optional

from transformers import TrainerCallback, TrainerState
from transformers.utils import logging

from ..errors import UsageError

logger = logging.get_logger(__name__)


def cubic_sparsity(progress: float, final: float, start: float = 0.0, end: float = 0.75, initial: float = 0.0) -> float:
    """The target sparsity at ``progress`` (fraction of training done): ``initial`` until ``start``, rising as a
    cubic to ``final`` at ``end``, then ``final``."""
    if not 0.0 <= start < end <= 1.0:
        raise UsageError(f"pruning window {start}..{end} must satisfy 0 <= start < end <= 1 (fractions of training)")
    through = min(max((progress - start) / (end - start), 0.0), 1.0)
    return final + (initial - final) * (1.0 - through) ** 3


class GradualPruningCallback(TrainerCallback):
    """Prunes ``pruner`` to the cubic schedule's sparsity at ``events`` evenly spaced points of the pruning window.

    ``progress(state)`` gives the fraction of training done: steps over ``max_steps``, or the budget's fraction of
    time spent; by default :func:`training_progress` of the trainer, set with :meth:`attach`. ``history`` keeps
    (step, progress, sparsity) of every pruning step.
    If training ends before the window does, the final sparsity is applied at the end, without recovery, and a
    warning says so.
    """

    def __init__(
        self,
        pruner,
        final_sparsity: float,
        progress: Optional[Callable[[TrainerState], float]] = None,
        start: float = 0.0,
        end: float = 0.75,
        events: int = 16,
    ):
        cubic_sparsity(0.0, final_sparsity, start, end)  # validates the window
        if events < 1:
            raise UsageError(f"pruning events {events} must be at least 1")
        self.pruner, self.final, self.progress = pruner, final_sparsity, progress
        self.start, self.end, self.events = start, end, events
        self.event = 0
        self.sparsity = 0.0
        self.history: list[tuple[int, float, float]] = []
        self.report = None

    def attach(self, trainer) -> "GradualPruningCallback":
        """Adds this callback to ``trainer``, measuring progress as :func:`training_progress` does."""
        if self.progress is None:
            self.progress = training_progress(trainer)
        trainer.add_callback(self)
        return self

    def on_train_begin(self, args, state, control, **kwargs):
        if self.progress is None:
            raise UsageError("GradualPruningCallback needs progress: add it with callback.attach(trainer)")

    def _event_at(self, progress: float) -> int:
        through = min(max((progress - self.start) / (self.end - self.start), 0.0), 1.0)
        return int(through * self.events + 1e-9)

    def _prune(self, step: int, progress: float, event: int) -> None:
        sparsity = cubic_sparsity(
            self.start + (self.end - self.start) * event / self.events, self.final, self.start, self.end
        )
        self.pruner.prune_to(sparsity)
        self.event, self.sparsity = event, sparsity
        self.history.append((step, round(progress, 4), round(sparsity, 4)))

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.pruner.observe()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.pruner.enforce()

    def on_step_end(self, args, state, control, **kwargs):
        progress = self.progress(state)
        event = self._event_at(progress)
        if event > self.event:
            self._prune(state.global_step, progress, event)

    def on_train_end(self, args, state, control, **kwargs):
        if self.event < self.events:
            logger.warning(
                f"training ended at {self.progress(state):.0%} of its budget, before the pruning window "
                f"closed at {self.end:.0%}: pruned to {self.final:.0%} at the end, with no recovery"
            )
            self._prune(state.global_step, self.progress(state), self.events)
        self.report = self.pruner.finish()


def training_progress(trainer) -> Callable[[TrainerState], float]:
    """Fraction of training done, for a :class:`~hf_tbc.budget.trainer.BudgetTrainer` (time budget) or any ``Trainer``
    with ``max_steps``."""
    budget: Optional[object] = getattr(trainer, "budget", None)
    if budget is not None:
        return lambda state: budget.fraction()
    return lambda state: state.global_step / max(state.max_steps, 1)
