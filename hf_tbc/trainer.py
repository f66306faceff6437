"""The Trainer side of a budgeted run: arguments, a Trainer that wires the budget in, progress, summaries."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field, fields
from collections.abc import Mapping
from pathlib import Path
from typing import Optional, Union

import torch
from tqdm.auto import tqdm
from transformers import Seq2SeqTrainer, Trainer, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from .budget import (
    TIME_SCHEDULES,
    TimeBasedLRScheduler,
    WallClockBudgetCallback,
    format_duration,
    parse_duration,
)
from .curves import CurveCallback
from .errors import UsageError

logger = logging.get_logger(__name__)

# transformers' own non-padding token counter copy-constructs a tensor each step and warns about it
warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)

RUN_ARTIFACTS = ("curve.jsonl", "run_summary.json", "eval_results.json", "loss_vs_time.png")  # what every recipe writes
RUN_RECORDS = ("run_summary.json", "eval_results.json")  # what pretraining and finetuning write last
# A preempted run exits with the status of a process ended by SIGTERM (128 + 15), the code that Kubernetes'
# podFailurePolicy, Slurm's RequeueExit and most wrappers match for "stopped from outside: requeue me".
PREEMPTED_EXIT_CODE = 143


def _accelerator_available() -> bool:
    if torch.cuda.is_available():
        return True
    for backend in ("xpu", "mps", "npu", "mlu", "musa"):
        module = getattr(torch, backend, None) or getattr(torch.backends, backend, None)
        if module is not None and getattr(module, "is_available", lambda: False)():
            return True
    return False


def native_bf16(cpuinfo: Optional[str] = None) -> bool:
    """Whether this machine computes in bfloat16 natively: a GPU with bf16 units (Ampere or newer), or a CPU with bf16
    instructions (x86 AVX512-BF16 or AMX, ARM's BF16 extension). Elsewhere bf16 is emulated and slower than fp32.
    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when not given)."""
    if torch.cuda.is_available():
        return _cuda_native_bf16()
    if _accelerator_available():
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _cuda_native_bf16() -> bool:
    """Whether this rank's GPU has bf16 units: compute capability 8.0 (Ampere) or newer, or a ROCm GPU.

    ``torch.cuda.is_bf16_supported()`` also says yes where bf16 is only emulated (V100, T4: slower than fp32), and
    it probes by allocating on the current device, which before the Trainer sets each rank's device is cuda:0 on
    every rank. The capability is read from the device of ``LOCAL_RANK`` without allocating anything.
    """
    if torch.version.hip:
        return True
    device = int(os.environ.get("LOCAL_RANK", "0") or 0) % max(torch.cuda.device_count(), 1)
    return torch.cuda.get_device_capability(device)[0] >= 8


_PARENT_FIELDS = {item.name for item in fields(TrainingArguments)}


BF16_HELP = ("bfloat16 autocast (weights and optimizer stay fp32). Default: on where the hardware computes bf16 natively "
             "(CUDA GPUs that support it, CPUs with AVX512-BF16/AMX or ARM BF16), off elsewhere.")


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
            ``"time"``: ``lr_scheduler_type`` (linear, cosine, constant, constant_with_warmup) and
            ``warmup_ratio`` run on the budget clock, reaching the floor at the deadline; ``"steps"``: the
            usual step-based schedules over ``max_steps``. Defaults to ``"time"`` when a budget is set.
        min_lr_ratio (`float`, defaults to 0.0):
            Floor of a time-based schedule, as a fraction of ``learning_rate``.
    """

    time_budget: Optional[str] = field(
        default=None, metadata={"help": "Wall-clock training budget, e.g. '90s', '15m', '1h30m', '2h' or seconds."}
    )
    budget_includes_eval: bool = field(
        default=False, metadata={"help": "Count evaluation and checkpoint time against --time_budget."}
    )
    eval_every: Optional[str] = field(
        default=None,
        metadata={"help": "Evaluate every interval of budget time ('2m') or every N steps ('500'). "
                  "Default with a budget: ten evaluations per budget."},
    )
    save_every: Optional[str] = field(
        default=None, metadata={"help": "Checkpoint every interval of budget time ('10m') or every N steps ('1000')."}
    )
    schedule_by: Optional[str] = field(
        default=None,
        metadata={"help": "'time': --lr_scheduler_type and --warmup_ratio follow the budget clock and reach the "
                  "floor at the deadline; 'steps': follow max_steps. Default: 'time' with a budget.",
                  "choices": ["time", "steps"]},
    )
    min_lr_ratio: float = field(default=0.0, metadata={"help": "Floor of a time-based LR schedule, x learning_rate."})
    # transformers 5 dropped these two; hf-tbc keeps them, with the same meaning on 4.x and 5.x
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Linear warmup, as a fraction of the budget (time schedules) or of max_steps."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace the run in --output_dir (its checkpoints and records)."})
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N steps."})
    include_num_input_tokens_seen: Optional[str] = field(
        default="non_padding", metadata={"help": "Count input tokens for curve.jsonl ('non_padding', 'all', 'no')."}
    )
    report_to: Optional[str] = field(default="none", metadata={"help": "Integrations to report to ('none', 'all', ...)."})

    def __post_init__(self):
        if self.bf16 is None:  # a recipe's native_bf16_field(), left unset
            self.bf16 = not self.fp16 and native_bf16()
        self.time_budget_seconds = parse_duration(self.time_budget) if self.time_budget is not None else None
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
        if self.schedule_by == "steps" and self.warmup_ratio and not self.warmup_steps and "warmup_ratio" not in _PARENT_FIELDS:
            self.warmup_steps = self.warmup_ratio  # transformers 5 reads a float below 1 as a fraction of the steps
        if not _accelerator_available():
            # Without this, two CPU processes train two independent copies instead of one DDP model.
            self.use_cpu = True
        super().__post_init__()

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


class BudgetMixin:
    """What a budget adds to a ``Trainer`` class: the :class:`WallClockBudgetCallback`, ``curve.jsonl`` logging
    (``curve_metrics`` names extra evaluation metrics to record, e.g. ``("eval_bleu",)``), the budget progress
    bar and the time-based LR schedule. Mixed into the stock ``Trainer`` (:class:`BudgetTrainer`) and
    ``Seq2SeqTrainer`` (:class:`BudgetSeq2SeqTrainer`); everything else is theirs."""

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
        if args.use_cpu and torch.get_num_threads() < (os.cpu_count() or 1) // max(args.world_size, 1):
            logger.warning(
                f"torch uses {torch.get_num_threads()} of {os.cpu_count()} CPU threads per process "
                "(accelerate launch sets OMP_NUM_THREADS=1 unless told): launch with `--cpu --num_processes 1` "
                "or `--num_cpu_threads_per_process N` to use them all"
            )

    def train(self, *args, **kwargs):
        try:
            return super().train(*args, **kwargs)
        finally:  # on_train_end does not run when training raises: the SIGTERM handler must not outlive it
            if self.budget is not None:
                self.budget.restore_signal_handler()

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
            logs["train_tokens_per_second"] = round((self.state.num_input_tokens_seen - budget.resumed_at["tokens"]) / seconds, 3)
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
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if getattr(self, "_loss_shifts_labels", False):  # causal LMs score labels[..., 1:] (transformers 5)
            labels = inputs["shift_labels"] if "shift_labels" in inputs else labels[..., 1:]
        count = labels.ne(-100).sum()  # before the model runs: the label smoother pops the labels
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)  # a plain mean over this micro-batch
        share = count.to(loss.device) / torch.as_tensor(num_items_in_batch, device=loss.device)
        if self.args.average_tokens_across_devices:
            share = share * self.accelerator.num_processes
        loss = loss * share
        return (loss, outputs) if return_outputs else loss

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

    def create_scheduler(self, num_training_steps: int, optimizer: Optional[torch.optim.Optimizer] = None):
        if self.lr_scheduler is None and self.args.schedule_by == "time":
            self.lr_scheduler = TimeBasedLRScheduler(
                optimizer if optimizer is not None else self.optimizer,
                self.budget,
                schedule=getattr(self.args.lr_scheduler_type, "value", self.args.lr_scheduler_type),
                warmup_fraction=self.args.warmup_ratio,
                min_lr_ratio=self.args.min_lr_ratio,
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


# -- output folders and checkpoints --------------------------------------------------------------------
def last_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The newest ``checkpoint-N`` in ``output_dir`` whose save finished: the Trainer writes ``trainer_state.json``
    last, so a folder without it (or with a cut-off one) was killed mid-save and is never resumed from."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    checkpoints = [path for path in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
                   if re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-\d+", path.name) and _complete_state(path / TRAINER_STATE_NAME)]
    if not checkpoints:
        return None
    return str(max(checkpoints, key=lambda path: int(path.name.split("-")[-1])))


def _complete_state(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def check_writable(folder: Union[str, Path], flag: str = "--output_dir") -> None:
    """``UsageError`` unless ``folder`` exists as a writable folder or can be created; creates nothing."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {folder}: {existing} is a file, not a folder: choose another path")
    try:
        probe = tempfile.mkdtemp(prefix=".hf-tbc-write-test-", dir=existing)
    except OSError as error:
        raise UsageError(f"{flag} {folder} cannot be written ({existing}: {error.strerror}): choose a folder you can write "
                         "to, e.g. --output_dir runs/NAME") from None
    os.rmdir(probe)


def prepare_output_dir(args: TrainingArguments, artifacts: tuple[str, ...] = ()) -> Optional[str]:
    """Checks ``output_dir`` before anything is written; returns the checkpoint to resume from, if any.

    A folder holding another run is an error unless ``--overwrite_output_dir`` (which clears that run's
    checkpoints and records: :data:`RUN_ARTIFACTS` and the recipe's own ``artifacts``) or
    ``--resume_from_checkpoint`` (a path, or ``true`` for the newest one).
    """
    folder = Path(args.output_dir)
    check_writable(folder)
    resume = args.resume_from_checkpoint
    if resume is not None:
        if str(resume).lower() in ("true", "last", "latest"):
            checkpoint = last_complete_checkpoint(args.output_dir)
            if checkpoint is None:
                raise UsageError(f"--resume_from_checkpoint {resume}: {folder} holds no complete checkpoint to resume")
            return checkpoint
        if not _complete_state(Path(resume) / TRAINER_STATE_NAME):
            raise UsageError(f"--resume_from_checkpoint {resume} is not a complete checkpoint (no readable "
                             f"{TRAINER_STATE_NAME}: its save was cut off): pass an earlier checkpoint, or true for the newest complete one")
        return str(resume)
    if folder.is_dir() and any(folder.iterdir()):
        if not args.overwrite_output_dir:
            hint = " or --resume_from_checkpoint true to continue it" if last_complete_checkpoint(args.output_dir) else ""
            raise UsageError(f"--output_dir {folder} already holds files: pass --overwrite_output_dir to replace them{hint}")
        if args.process_index == 0:
            for checkpoint in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
                shutil.rmtree(checkpoint)
            for name in (*RUN_ARTIFACTS, *artifacts):
                (folder / name).unlink(missing_ok=True)
    return None


def hardware_summary() -> dict:
    """What the run ran on: CPU, accelerator, thread count and library versions."""
    import accelerate
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "python": platform.python_version(),
    }


def median_step_seconds(model: torch.nn.Module, inputs: dict, bf16: bool = False, steps: int = 3) -> float:
    """Median seconds of an AdamW training step of ``model`` on ``inputs`` (with ``labels``) on this machine's CPU,
    under bf16 autocast if asked; one extra first step warms allocators up and is not counted."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    timings = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - start)
    return sorted(timings[1:])[len(timings[1:]) // 2]


def describe_hardware(hardware: dict) -> str:
    """One line for a report: the accelerator (or CPU), core count and library versions of a ``hardware_summary``."""
    return (f"{hardware.get('accelerator') or hardware.get('cpu')}, {hardware.get('cpu_count')} CPU cores, torch "
            f"{hardware.get('torch')}, transformers {hardware.get('transformers')}.")


def write_json(path: Path, record: dict) -> None:
    """Writes ``record`` as indented JSON through a temporary file, so a reader never sees half of it."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


def record_preemption(trainer: "BudgetTrainer", record_name: str, **fields) -> dict:
    """Writes ``record_name`` for a run stopped by SIGTERM: ``stop_reason: preempted``, the checkpoint to resume
    from, and no model claimed, so nothing downstream mistakes the folder for a finished run."""
    output_dir = trainer.args.output_dir
    record = {
        "stop_reason": "preempted",
        "model_saved": False,
        "checkpoint": last_complete_checkpoint(output_dir),
        "steps": trainer.state.global_step,
        "train_s": round(trainer.budget.train_seconds(), 3),
        "time_budget_s": trainer.budget.time_budget,
        "resume": "rerun the same command with --resume_from_checkpoint true",
        **fields,
    }
    if trainer.is_world_process_zero():
        write_json(Path(output_dir) / record_name, record)
        logger.warning(f"Preempted at step {record['steps']}: checkpoint {record['checkpoint']}; {record['resume']} "
                       f"(exit code {PREEMPTED_EXIT_CODE})")
    return record


def preempted_record(folder: Union[str, Path], names: tuple[str, ...] = RUN_RECORDS) -> Optional[dict]:
    """The record in ``folder`` of a run preempted before its final model, if there is one."""
    for name in names:
        try:
            record = json.loads((Path(folder) / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("stop_reason") == "preempted":
            return record
    return None


def check_finished_run(folder: str) -> None:
    """``UsageError`` if ``folder`` holds a run that was preempted before it saved its final model."""
    record = preempted_record(folder)
    if record is not None:
        raise UsageError(f"{folder} holds a run preempted at step {record.get('steps')} with no final model: "
                         "resume it with --resume_from_checkpoint true first")


def load_model_config(model_name_or_path: str, flag: str = "--model_name_or_path"):
    """The config of a finished local run or a Hub model; one clear ``ValueError`` when there is none."""
    from transformers import AutoConfig

    if Path(model_name_or_path).is_dir():
        check_finished_run(model_name_or_path)
    try:
        return AutoConfig.from_pretrained(model_name_or_path)
    except OSError:
        where = "a folder without config.json" if Path(model_name_or_path).is_dir() else "no such folder"
        raise UsageError(f"{flag} {model_name_or_path}: {where}, and no Hub model of that name could be loaded: pass a "
                         "folder written by recipes/run_mlm.py or run_classification.py, or a Hub model id") from None


def describe_stop(budget: Optional[WallClockBudgetCallback]) -> str:
    if budget is None:
        return "max_steps"
    return f"{budget.stop_reason} after {format_duration(budget.budget_seconds())} of {format_duration(budget.time_budget)}"
