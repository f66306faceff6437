"""The Trainer side of a budgeted run: a Trainer that wires the budget in (callback, LR schedule, curve, exact
losses under DDP, resume), and the budget progress bar."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Optional

import torch
from tqdm.auto import tqdm
from transformers import Seq2SeqTrainer, Trainer, get_scheduler
from transformers.trainer_callback import ProgressCallback
from transformers.utils import logging

from ..launch import available_cores
from . import TimeBasedLRScheduler, WallClockBudgetCallback, format_duration
from .arguments import BudgetTrainingArguments
from .curves import CurveCallback

logger = logging.get_logger(__name__)

# transformers' own non-padding token counter copy-constructs a tensor each step and warns about it
warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)


class BudgetProgressCallback(ProgressCallback):
    """A progress bar over the budget's seconds, showing time left, step and latest losses."""

    def __init__(self, budget: WallClockBudgetCallback):
        super().__init__()
        self.budget = budget
        self._postfix: dict[str, str] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            total = int(round(self.budget.time_budget))
            self.training_bar = tqdm(total=total, unit="s", dynamic_ncols=True, desc="budget")
            self.training_bar.update(min(int(self.budget.elapsed), total))

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            done = min(int(self.budget.elapsed), self.training_bar.total)
            self.training_bar.update(done - self.training_bar.n)
            self._postfix["left"] = format_duration(self.budget.remaining())
            self._postfix["step"] = str(state.global_step)
            self.training_bar.set_postfix(self._postfix, refresh=False)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        for key in ("loss", "eval_loss"):
            if key in logs:
                self._postfix[key] = f"{logs[key]:.3f}"
        super().on_log(args, state, control, logs=logs, **kwargs)


def filled_by_a_tied_twin(model: torch.nn.Module, missing_keys: list[str]) -> list[str]:
    """``missing_keys`` less the names of parameters that share their tensor with a parameter the checkpoint did
    hold (tied weights): what is really missing."""
    groups: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(parameter), []).append(name)
    absent = set(missing_keys)
    filled = {name for names in groups.values() if len(names) > 1 and not set(names) <= absent for name in names}
    return [key for key in missing_keys if key not in filled]


class BudgetMixin:
    """What a budget adds to a ``Trainer`` class: the :class:`WallClockBudgetCallback`, ``curve.jsonl`` logging
    (``curve_metrics`` names extra evaluation metrics to record, e.g. ``("eval_bleu",)``), the budget progress
    bar and the time-based LR schedule. With ``args.count_tokens_by_shape`` it counts the input tokens of each
    micro-batch from its shape times the number of processes, for batches without padding (packed blocks): the
    Trainer's own ``include_num_input_tokens_seen`` gathers every micro-batch's count across ranks and reads it back
    to the host, a collective and a sync per micro-step, for a number the shape already says.
    Mixed into the stock ``Trainer`` (:class:`BudgetTrainer`) and ``Seq2SeqTrainer`` (:class:`BudgetSeq2SeqTrainer`);
    everything else is theirs."""

    def __init__(self, *trainer_args, curve_metrics: tuple[str, ...] = (), **trainer_kwargs):
        super().__init__(*trainer_args, **trainer_kwargs)
        args: BudgetTrainingArguments = self.args
        self.budget: Optional[WallClockBudgetCallback] = None
        if args.time_budget_seconds is not None:
            self.budget = WallClockBudgetCallback(
                args.time_budget_seconds,
                budget_includes_eval=args.budget_includes_eval,
                eval_every=args.eval_every_seconds if self.eval_dataset is not None else None,
                save_every=args.save_every_seconds,
                stop_after=args.stop_after_seconds,
            )
            self.add_callback(self.budget)
            if not args.disable_tqdm:
                self.remove_callback(ProgressCallback)
                self.add_callback(BudgetProgressCallback(self.budget))
        self.add_callback(CurveCallback(args.output_dir, self.budget, metrics=curve_metrics))
        if self.compute_loss_func is None:
            # have the Trainer count the labels of every batch across ranks, so that compute_loss can weight each
            # rank's share of the global batch exactly (see compute_loss)
            self.model_accepts_loss_kwargs = True
        cores = available_cores()
        if args.use_cpu and torch.get_num_threads() < cores // max(args.world_size, 1):
            logger.warning(
                f"torch uses {torch.get_num_threads()} of {cores} CPU threads per process "
                "(accelerate launch sets OMP_NUM_THREADS=1 unless told): launch with `--cpu --num_processes 1` "
                "or `--num_cpu_threads_per_process N` to use them all"
            )

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:  # on_train_end does not run when training raises: the SIGTERM handler must not outlive it
            if self.budget is not None:
                self.budget.restore_signal_handler()

    def training_step(self, model, inputs, *args, **kwargs):
        if self.args.count_tokens_by_shape:
            tokens = inputs[getattr(self.model, "main_input_name", "input_ids")].numel()
            self.state.num_input_tokens_seen += tokens * self.accelerator.num_processes
        return super().training_step(model, inputs, *args, **kwargs)

    def _determine_best_metric(self, metrics, trial) -> bool:
        # the Trainer's own bookkeeping of the best metric and step; under a budget whose evaluations run on the
        # clock, a new best is also what saves a checkpoint (BudgetTrainingArguments._keep_best_on_the_clock)
        is_new_best = super()._determine_best_metric(metrics, trial)
        if is_new_best and getattr(self.args, "save_on_best", False):
            self.control.should_save = True
        return is_new_best

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        # The Trainer derives its final throughput from max_steps, which a budget never reaches:
        # report what was actually trained instead.
        if "train_runtime" in logs and self.budget is not None:
            budget = self.budget
            seconds = max(budget.train_seconds() - budget.resumed_at["train_seconds"], 1e-9)
            steps = self.state.global_step - budget.resumed_at["step"]
            batch = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
            logs["train_samples_per_second"] = round(steps * batch / seconds, 3)
            logs["train_steps_per_second"] = round(steps / seconds, 3)
            logs["train_tokens_per_second"] = round(
                (self.state.num_input_tokens_seen - budget.resumed_at["tokens"]) / seconds, 3
            )
        super().log(logs, start_time)

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        """The loss as this rank's share of the mean over the global batch's labelled positions.

        The Trainer passes ``num_items_in_batch``, the labels of the whole accumulated batch (on every rank when
        ``average_tokens_across_devices``), and then treats the loss as a sum over this micro-batch divided by it,
        multiplied by the world size for DDP's gradient average. The models trained here (RoBERTa, the
        encoder-decoders) return a mean over their own labels and ignore that count, so the stock Trainer of
        transformers 5 multiplied a mean by the world size: every logged and evaluated loss, and the gradient, came
        out that many times too large. Here the model's mean, over ``count`` labels, becomes ``mean * count / N``
        (times the world size): summed over micro-batches and averaged over ranks, exactly the mean over the global
        batch that one process would compute, whichever way the model reduces its loss.
        """
        labels = inputs.get("labels") if isinstance(inputs, Mapping) else None  # a dict or a BatchEncoding
        if num_items_in_batch is None or self.compute_loss_func is not None or labels is None or self.args.n_gpu > 1:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        if getattr(self, "_loss_shifts_labels", False):  # causal LMs score labels[..., 1:] (transformers 5)
            labels = inputs["shift_labels"] if "shift_labels" in inputs else labels[..., 1:]
        count = labels.ne(-100).sum()  # before the model runs: the label smoother pops the labels
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)  # a plain mean over this micro-batch
        share = count.to(loss.device) / torch.as_tensor(num_items_in_batch, device=loss.device)
        if self.args.average_tokens_across_devices:
            share = share * self.accelerator.num_processes
        loss = loss * share
        return (loss, outputs) if return_outputs else loss

    def _issue_warnings_after_load(self, load_result):
        # a checkpoint keeps one copy of a tensor two parameters share (the output layer tied to the embeddings): the
        # other name is "missing" though the load filled it, and the Trainer warned so on every resume
        missing = filled_by_a_tied_twin(self.model, load_result.missing_keys)
        return super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    def _load_optimizer_and_scheduler(self, checkpoint):
        device = self.args.device
        if checkpoint is None or device.type != "cpu" or device.index is None:
            return super()._load_optimizer_and_scheduler(checkpoint)
        # Under CPU DDP the device is "cpu:0", and transformers 4.x loads the optimizer state with it as map_location,
        # a location torch.load cannot restore to ("don't know how to restore data location ... cpu:0"): resuming a
        # checkpoint of several CPU processes failed on every rank. The state is loaded onto plain "cpu" instead.
        real_load = torch.load

        def load(*args, **kwargs):
            location = kwargs.get("map_location")
            if isinstance(location, torch.device) and location.type == "cpu":
                kwargs["map_location"] = "cpu"
            return real_load(*args, **kwargs)

        torch.load = load
        try:
            return super()._load_optimizer_and_scheduler(checkpoint)
        finally:
            torch.load = real_load

    def _cooldown(self) -> Optional[tuple[float, float]]:
        """``--cooldown`` as the fractions of the budget it spans, ending at ``--stop_after``."""
        if self.args.cooldown_seconds is None:
            return None
        end = self.args.stop_after_seconds / self.args.time_budget_seconds
        return end - self.args.cooldown_seconds / self.args.time_budget_seconds, end

    def create_scheduler(self, num_training_steps: int, optimizer: Optional[torch.optim.Optimizer] = None):
        if self.lr_scheduler is None and self.args.schedule_by == "time":
            self.lr_scheduler = TimeBasedLRScheduler(
                optimizer if optimizer is not None else self.optimizer,
                self.budget,
                schedule=getattr(self.args.lr_scheduler_type, "value", self.args.lr_scheduler_type),
                warmup_fraction=self.args.warmup_ratio,
                min_lr_ratio=self.args.min_lr_ratio,
                warmup_steps=int(self.args.warmup_steps),
                cooldown=self._cooldown(),
                decay_fraction=self.args.decay_ratio,
            )
            self._created_lr_scheduler = True
            return self.lr_scheduler
        scheduler = getattr(self.args.lr_scheduler_type, "value", self.args.lr_scheduler_type)
        kwargs = self.args.lr_scheduler_kwargs or {}
        if self.lr_scheduler is None and scheduler == "warmup_stable_decay" and "num_decay_steps" not in kwargs:
            # transformers' step-based form needs the decay's length: --decay_ratio of the steps, as on the clock
            decay = max(1, round(self.args.decay_ratio * num_training_steps))
            self.lr_scheduler = get_scheduler(
                scheduler,
                optimizer=optimizer if optimizer is not None else self.optimizer,
                num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps,
                scheduler_specific_kwargs={**kwargs, "num_decay_steps": decay},
            )
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)


class BudgetTrainer(BudgetMixin, Trainer):
    """A ``Trainer`` that runs on a :class:`BudgetTrainingArguments` budget (see :class:`BudgetMixin`)."""


class BudgetSeq2SeqTrainer(BudgetMixin, Seq2SeqTrainer):
    """A ``Seq2SeqTrainer`` that runs on a budget (see :class:`BudgetMixin`): with ``predict_with_generate`` its
    evaluations decode, and their time, like every evaluation's, is kept off the budget unless
    ``budget_includes_eval``. Evaluation keeps the dataset's order even with ``group_by_length`` (the stock
    Trainer then sorts evaluation batches by length too), so generated texts line up with references kept aside."""

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or not hasattr(eval_dataset, "__len__"):
            return None
        return torch.utils.data.SequentialSampler(eval_dataset)
