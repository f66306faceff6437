"""``BudgetTrainingArguments``: transformers' ``TrainingArguments`` plus a wall-clock budget and its schedule."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Optional

from transformers import TrainingArguments

from ..errors import UsageError
from ..hardware import accelerator_available, native_bf16
from . import TIME_SCHEDULES, parse_duration
from .schedules import DECAY_RATIO

_PARENT_FIELDS = {item.name for item in fields(TrainingArguments)}


BF16_HELP = (
    "bfloat16 autocast (weights and optimizer stay fp32). Default: on where the hardware computes bf16 natively "
    "(CUDA GPUs that support it, CPUs with AVX512-BF16/AMX or ARM BF16), off elsewhere."
)


def native_bf16_field():
    """A ``bf16`` field whose default, None, becomes :func:`native_bf16` in ``BudgetTrainingArguments.__post_init__``:
    the recipes that train in bf16 where the hardware does it natively declare ``bf16 = native_bf16_field()``."""
    return field(default=None, metadata={"help": BF16_HELP})


@dataclass
class BudgetTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus a wall-clock budget. ``HfArgumentParser`` turns every field into a CLI flag.

    Parameters:
        time_budget (`str`, *optional*):
            Wall-clock budget for training: ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2h"`` or seconds.
            Training ends at the optimizer step whose end is nearest it, then evaluates and saves.
        budget_includes_eval (`bool`, defaults to `False`):
            Count evaluation and checkpointing time against the budget. Both clocks are logged either way.
        eval_every (`str`, *optional*):
            Evaluate every interval of budget time (``"2m"``) or every N steps (``"500"``).
            Defaults to ten evaluations per budget when a budget is set.
        save_every (`str`, *optional*):
            Save a checkpoint every interval of budget time (``"10m"``) or every N steps (``"1000"``).
        schedule_by (`str`, *optional*):
            ``"time"``: ``lr_scheduler_type`` (warmup_stable_decay, linear, cosine, constant, constant_with_warmup) and
            ``warmup_ratio`` run on the budget clock, reaching the floor at the deadline; ``"steps"``: the
            usual step-based schedules over ``max_steps``. Defaults to ``"time"`` when a budget is set.
        min_lr_ratio (`float`, defaults to 0.0):
            Floor of a time-based schedule, as a fraction of ``learning_rate``.
        stop_after (`str`, *optional*):
            End the run after this much of ``time_budget``, with a checkpoint, on the whole budget's schedule: a
            probe that ``--resume_from_checkpoint true`` (without ``stop_after``) continues to the deadline.
    """

    time_budget: Optional[str] = field(
        default=None, metadata={"help": "Wall-clock training budget, e.g. '90s', '15m', '1h30m', '2h' or seconds."}
    )
    budget_includes_eval: bool = field(
        default=False, metadata={"help": "Count evaluation and checkpoint time against --time_budget."}
    )
    eval_every: Optional[str] = field(
        default=None,
        metadata={
            "help": "Evaluate every interval of budget time ('2m') or every N steps ('500'). "
            "Default with a budget: ten evaluations per budget."
        },
    )
    save_every: Optional[str] = field(
        default=None, metadata={"help": "Checkpoint every interval of budget time ('10m') or every N steps ('1000')."}
    )
    schedule_by: Optional[str] = field(
        default=None,
        metadata={
            "help": "'time': --lr_scheduler_type and --warmup_ratio follow the budget clock and reach the "
            "floor at the deadline; 'steps': follow max_steps. Default: 'time' with a budget.",
            "choices": ["time", "steps"],
        },
    )
    min_lr_ratio: float = field(default=0.0, metadata={"help": "Floor of a time-based LR schedule, x learning_rate."})
    decay_ratio: float = field(
        default=DECAY_RATIO,
        metadata={
            "help": "--lr_scheduler_type warmup_stable_decay: the last share of the budget over which the LR falls "
            "to its floor (it holds the peak before)."
        },
    )
    stop_after: Optional[str] = field(
        default=None,
        metadata={
            "help": "End this run after this much of --time_budget ('1m'), with a checkpoint; the LR schedule and "
            "evaluations stay those of the whole budget, so the run is the start of the full one: "
            "--resume_from_checkpoint true without --stop_after continues it to the deadline."
        },
    )
    cooldown: Optional[str] = field(
        default=None,
        metadata={
            "help": "With --stop_after: decay the LR linearly to zero over this last part before it ('20s'), so that "
            "the run ends as if its budget ended there. A cool-down branch resumed from a probe's checkpoint says "
            "what loss a run stopped at that point would reach."
        },
    )
    # transformers 5 dropped these two; hf-tbc keeps them, with the same meaning on 4.x and 5.x
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Linear warmup, as a fraction of the budget (time schedules) or of max_steps."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace the run in --output_dir (its checkpoints and records)."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N steps."})
    include_num_input_tokens_seen: Optional[str] = field(
        default="non_padding", metadata={"help": "Count input tokens for curve.jsonl ('non_padding', 'all', 'no')."}
    )
    count_tokens_by_shape: bool = field(
        default=False,
        metadata={
            "help": "Count each micro-batch's input tokens from its shape times the processes, for batches without "
            "padding (packed blocks), instead of the Trainer's per-step gather (--include_num_input_tokens_seen, "
            "then 'no')."
        },
    )
    report_to: Optional[str] = field(
        default="none", metadata={"help": "Integrations to report to ('none', 'all', ...)."}
    )

    def __post_init__(self):
        if self.bf16 is None:  # a recipe's native_bf16_field(), left unset
            self.bf16 = not self.fp16 and native_bf16()
        self.time_budget_seconds = parse_duration(self.time_budget) if self.time_budget is not None else None
        self.stop_after_seconds = parse_duration(self.stop_after, "--stop_after") if self.stop_after else None
        if self.stop_after_seconds is not None and self.time_budget_seconds is None:
            raise UsageError("--stop_after ends a run early within its --time_budget: set a --time_budget too")
        self.cooldown_seconds = parse_duration(self.cooldown, "--cooldown") if self.cooldown else None
        if self.cooldown_seconds is not None and (
            self.stop_after_seconds is None or self.cooldown_seconds > self.stop_after_seconds
        ):
            raise UsageError("--cooldown is the last part of --stop_after: set a --stop_after at least as long")
        self.eval_every_seconds = self._interval("eval_every")
        self.save_every_seconds = self._interval("save_every")
        self.schedule_by = self.schedule_by or ("time" if self.time_budget_seconds is not None else "steps")
        if self.time_budget_seconds is not None:
            if self.eval_every is None and self.eval_strategy in ("no", None):
                self.eval_every_seconds = self.time_budget_seconds / 10
            if self.max_steps is None or self.max_steps <= 0:
                if self.schedule_by == "steps":
                    raise UsageError(
                        "--schedule_by steps with a --time_budget needs --max_steps, the step count the schedule spans "
                        "(warmup and decay are fractions of it): set --max_steps, or use --schedule_by time"
                    )
                self.max_steps = 10**9  # the budget ends training; the Trainer needs a finite step count
            if self.restore_callback_states_from_checkpoint:
                raise UsageError(
                    "--restore_callback_states_from_checkpoint true would replace the budget callback with a copy that "
                    "the LR schedule, progress bar and curve do not see: leave it out, the budget restores itself"
                )
        if self.schedule_by == "time":
            if self.time_budget_seconds is None:
                raise UsageError("--schedule_by time needs a --time_budget: set one, or use --schedule_by steps")
            scheduler = getattr(self.lr_scheduler_type, "value", self.lr_scheduler_type)
            if scheduler not in TIME_SCHEDULES:
                raise UsageError(
                    f"--lr_scheduler_type {scheduler} has no time-based form: choose one of "
                    f"{', '.join(TIME_SCHEDULES)} or pass --schedule_by steps"
                )
        if self.count_tokens_by_shape:  # counted by the trainer from each batch's shape: no gather per micro-step
            self.include_num_input_tokens_seen = "no"
        self._check_warmup_steps()
        self._keep_best_on_the_clock()
        if not accelerator_available():
            # Without this, two CPU processes train two independent copies instead of one DDP model.
            self.use_cpu = True
        super().__post_init__()

    def _keep_best_on_the_clock(self) -> None:
        """``load_best_model_at_end`` with evaluations on the budget clock (``eval_every``): the Trainer checks
        strategies by name and would refuse them, and would save nothing on its own, so every evaluation that sets a
        new best of ``metric_for_best_model`` saves a checkpoint instead (``save_on_best``, read by
        :class:`~hf_tbc.budget.trainer.BudgetMixin`), and ``save_total_limit`` (default 1) keeps the best. Step- or
        epoch-based evaluations keep transformers' own rule: a checkpoint at every evaluation, the best kept."""
        self.save_on_best = False
        if not self.load_best_model_at_end:
            return
        strategy = getattr(self.save_strategy, "value", self.save_strategy)
        evaluation = getattr(self.eval_strategy, "value", self.eval_strategy)
        if strategy not in ("no", evaluation):
            raise UsageError(
                f"--load_best_model_at_end saves a checkpoint at every evaluation that sets a new best: leave "
                f"--save_strategy at no or make it --eval_strategy's (it is {strategy}; --save_every still "
                "checkpoints on the clock)"
            )
        if evaluation in ("no", None):
            if self.eval_every_seconds is None:
                raise UsageError(
                    "--load_best_model_at_end needs evaluations to choose from: set --eval_every (e.g. 30s) with a "
                    "--time_budget, or --eval_strategy epoch"
                )
            never = 10**9  # step-based evaluation and saving never fire; the budget's clock evaluates
            self.eval_strategy, self.save_strategy, self.eval_steps, self.save_steps = "steps", "steps", never, never
            self.save_on_best = True
        else:
            self.save_strategy, self.save_steps = evaluation, self.eval_steps
        if self.save_total_limit is None:
            self.save_total_limit = 1

    def _check_warmup_steps(self) -> None:
        """``warmup_steps`` is a floor in optimizer steps on either schedule: warmup lasts the longer of it and
        ``warmup_ratio`` (transformers lets one override the other)."""
        if self.warmup_steps < 0 or self.warmup_steps != int(self.warmup_steps):
            raise UsageError(
                f"--warmup_steps {self.warmup_steps} must be a whole number of optimizer steps: "
                "for a fraction of the budget use --warmup_ratio"
            )
        self.warmup_steps = int(self.warmup_steps)
        if self.schedule_by == "steps" and self.warmup_ratio:
            if self.max_steps and self.max_steps > 0:
                self.warmup_steps = max(self.warmup_steps, math.ceil(self.warmup_ratio * self.max_steps))
            elif not self.warmup_steps and "warmup_ratio" not in _PARENT_FIELDS:
                self.warmup_steps = self.warmup_ratio  # transformers 5 reads a float below 1 as a fraction of the steps

    def _interval(self, name: str) -> Optional[float]:
        value = getattr(self, name)
        if value is None:
            return None
        if re.fullmatch(r"\d+", str(value).strip()):
            steps = int(value)
            if steps <= 0:
                raise UsageError(f"--{name} {value} must be positive")
            prefix = "eval" if name == "eval_every" else "save"
            setattr(self, f"{prefix}_strategy", "steps")
            setattr(self, f"{prefix}_steps", steps)
            return None
        if name == "save_every":
            self.save_strategy = "no"  # time-based saves replace step-based ones; the budget callback saves
        return parse_duration(value, f"--{name}")


def wsd_schedule_field():
    """The recipes' ``lr_scheduler_type`` field: ``warmup_stable_decay`` by default (docs/advisor.md#the-schedule)."""
    return field(
        default="warmup_stable_decay",
        metadata={
            "help": "LR schedule on the budget clock. warmup_stable_decay (default): the peak LR until the last "
            "--decay_ratio of the budget, then linear to zero, so that the run up to any earlier point is also the "
            "start of a shorter run (what the advisor's cool-down branches measure); linear: decay from the start."
        },
    )
