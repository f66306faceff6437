import shutil
from pathlib import Path

import pytest
import torch
from datasets import Dataset, IterableDataset
from transformers import RobertaForMaskedLM, TrainerCallback

from hf_tbc.budget.arguments import BudgetTrainingArguments
from hf_tbc.budget.curves import read_curve
from hf_tbc.budget.runs import last_complete_checkpoint, prepare_output_dir
from hf_tbc.budget.trainer import BudgetTrainer
from hf_tbc.tasks.mlm.model import roberta_config
from tests.test_budget import FakeClock


def _arguments(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "run"),
        time_budget="8s",
        per_device_train_batch_size=4,
        logging_steps=1,
        disable_tqdm=True,
        save_strategy="no",
        learning_rate=1e-3,
    )
    return BudgetTrainingArguments(**{**defaults, **kwargs})


def test_arguments_parse_budgets_intervals_and_schedules(tmp_path):
    args = _arguments(tmp_path, time_budget="1h30m", eval_every="500", save_every="10m")
    assert args.time_budget_seconds == 5400 and args.schedule_by == "time" and args.use_cpu
    assert (args.eval_strategy.value, args.eval_steps, args.eval_every_seconds) == ("steps", 500, None)
    assert args.save_every_seconds == 600 and args.save_strategy == "no" and args.max_steps == 10**9
    assert _arguments(tmp_path).eval_every_seconds == pytest.approx(0.8)  # ten evaluations per budget
    assert _arguments(tmp_path, time_budget=None, max_steps=5).schedule_by == "steps"
    with pytest.raises(ValueError, match="time budget '15 minutes'"):
        _arguments(tmp_path, time_budget="15 minutes")
    with pytest.raises(ValueError, match="polynomial has no time-based form"):
        _arguments(tmp_path, lr_scheduler_type="polynomial")
    with pytest.raises(ValueError, match="needs a --time_budget"):
        _arguments(tmp_path, time_budget=None, max_steps=5, schedule_by="time")


def test_output_dir_holding_a_run_is_refused_unless_overwrite_or_resume(tmp_path):
    run = tmp_path / "run"
    assert prepare_output_dir(_arguments(tmp_path)) is None  # absent: fine
    (run / "checkpoint-4").mkdir(parents=True)
    (run / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (run / "checkpoint-6").mkdir()  # a save cut off before trainer_state.json
    (run / "checkpoint-8").mkdir()  # a save cut off while writing trainer_state.json
    (run / "checkpoint-8" / "trainer_state.json").write_text('{"global_step": 8, "log_hist')
    (run / "curve.jsonl").write_text("{}\n")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(
        ValueError, match="already holds files: pass --overwrite_output_dir.*--resume_from_checkpoint true"
    ):
        prepare_output_dir(_arguments(tmp_path))
    assert last_complete_checkpoint(str(run)) == str(run / "checkpoint-4")
    assert prepare_output_dir(_arguments(tmp_path, resume_from_checkpoint="true")) == str(run / "checkpoint-4")
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        prepare_output_dir(_arguments(tmp_path, resume_from_checkpoint=str(run / "checkpoint-6")))
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        prepare_output_dir(_arguments(tmp_path, resume_from_checkpoint=str(run / "checkpoint-8")))
    (run / "bleu_vs_time.png").write_bytes(b"png")  # a recipe's own artifact, named by that recipe
    prepare_output_dir(_arguments(tmp_path, overwrite_output_dir=True), artifacts=("bleu_vs_time.png",))
    assert sorted(path.name for path in run.iterdir()) == ["notes.txt"]


class OneSecondPerStep(TrainerCallback):
    """Moves the fake clock as if each optimizer step took one second; can crash the run at a step."""

    def __init__(self, clock, crash_at=None):
        self.clock, self.crash_at = clock, crash_at

    def on_step_begin(self, args, state, control, **kwargs):
        self.clock.advance(1.0)
        if state.global_step == self.crash_at:
            raise KeyboardInterrupt("simulated kill")


def _trainer(args, clock, crash_at=None, **trainer_kwargs):
    torch.manual_seed(0)
    model = RobertaForMaskedLM(roberta_config("L2-H32", vocab_size=64, max_position_embeddings=40, pad_token_id=1))
    blocks = Dataset.from_dict({"input_ids": torch.randint(5, 64, (64, 16)).tolist()})

    def collate(examples):  # labels = inputs: the budget logic does not care what is learned
        input_ids = torch.tensor([example["input_ids"] for example in examples])
        return {"input_ids": input_ids, "labels": input_ids.clone()}

    trainer = BudgetTrainer(
        model=model,
        args=args,
        train_dataset=blocks,
        eval_dataset=blocks.select(range(8)),
        data_collator=collate,
        **trainer_kwargs,
    )
    trainer.budget.clock = clock
    trainer.add_callback(OneSecondPerStep(clock, crash_at))
    return trainer


def test_real_trainer_stops_at_the_deadline_with_lr_at_its_floor(tmp_path):
    clock = FakeClock()
    args = _arguments(tmp_path, warmup_ratio=0.25, eval_every="4s", save_strategy="steps", save_steps=1000)
    trainer = _trainer(args, clock)
    trainer.train()
    assert trainer.state.global_step == 8 and trainer.budget.stop_reason == "time_budget"
    rows = read_curve(args.output_dir)
    train_rows = [row for row in rows if row["loss"] is not None]
    assert [row["step"] for row in train_rows] == list(range(1, 9))
    assert train_rows[0]["lr"] == 0.0 and train_rows[2]["lr"] == pytest.approx(1e-3)  # warmup ends at 2 s
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0  # floor reached exactly at the deadline
    assert [row["step"] for row in rows if row["eval_loss"] is not None] == [4, 8]  # at 4 s, then the final eval
    assert (tmp_path / "run" / "checkpoint-8" / "trainer_state.json").exists()  # the final save
    assert all(row["tokens"] == row["step"] * 4 * 16 for row in train_rows)


def test_resumed_run_trains_only_for_the_rest_of_the_budget(tmp_path):
    clock = FakeClock()
    args = _arguments(tmp_path, save_strategy="steps", save_steps=3)
    with pytest.raises(KeyboardInterrupt):
        _trainer(args, clock, crash_at=5).train()  # killed two steps after checkpoint-3
    checkpoint = last_complete_checkpoint(args.output_dir)
    assert checkpoint.endswith("checkpoint-3")

    clock.advance(1000.0)  # downtime does not count
    resumed = _trainer(_arguments(tmp_path, save_strategy="steps", save_steps=3), clock)
    resumed.train(resume_from_checkpoint=checkpoint)
    assert resumed.state.global_step == 8  # 3 steps before the kill + 5 after the resume = 8 s of budget
    assert resumed.budget.train_seconds() == pytest.approx(8.0)
    assert resumed.budget.resumed_at["step"] == 3
    logged = [row for row in resumed.state.log_history if "train_steps_per_second" in row][-1]
    assert logged["train_steps_per_second"] == pytest.approx(1.0)  # 5 steps in 5 (fake) seconds


def _streamed_trainer(args, clock, crash_at=None, slow_replay_of=0):
    """:func:`_trainer` on a stream (an endless ``IterableDataset``, which the Trainer fast-forwards on resume by
    reading it); reading one of the first ``slow_replay_of`` rows moves the clock by 100 s, as replaying a large
    stream's tokenized batches costs real time."""
    torch.manual_seed(0)
    model = RobertaForMaskedLM(roberta_config("L2-H32", vocab_size=64, max_position_embeddings=40, pad_token_id=1))
    rows = torch.randint(5, 64, (64, 16)).tolist()

    def stream():
        index = 0
        while True:
            if index < slow_replay_of:
                clock.advance(100.0)
            yield {"input_ids": rows[index % len(rows)]}
            index += 1

    def collate(examples):
        input_ids = torch.tensor([example["input_ids"] for example in examples])
        return {"input_ids": input_ids, "labels": input_ids.clone()}

    trainer = BudgetTrainer(
        model=model, args=args, train_dataset=IterableDataset.from_generator(stream), data_collator=collate
    )
    trainer.budget.clock = clock
    trainer.add_callback(OneSecondPerStep(clock, crash_at))
    return trainer


def test_a_resumed_stream_fast_forwards_off_the_budget_clock_and_the_lr_schedule(tmp_path):
    def arguments(folder):
        return _arguments(folder, save_strategy="steps", save_steps=3, warmup_ratio=0.25, eval_strategy="no")

    uninterrupted = _streamed_trainer(arguments(tmp_path / "whole"), FakeClock())
    uninterrupted.train()
    clock = FakeClock()
    args = arguments(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _streamed_trainer(args, clock, crash_at=5).train()
    checkpoint = last_complete_checkpoint(args.output_dir)
    assert checkpoint.endswith("checkpoint-3")

    resumed = _streamed_trainer(arguments(tmp_path), clock, slow_replay_of=3 * 4)  # 3 steps of 4 rows replayed
    before = clock.now
    resumed.train(resume_from_checkpoint=checkpoint)
    assert clock.now - before >= 1200.0  # the replay took 20 (fake) minutes ...
    assert resumed.state.global_step == 8  # ... and the budget still gave the 5 steps left
    assert resumed.budget.train_seconds() == pytest.approx(8.0)
    assert resumed.budget.total_seconds() == pytest.approx(8.0)

    def learning_rates(trainer):
        return {row["step"]: row["learning_rate"] for row in trainer.state.log_history if "learning_rate" in row}

    assert sorted(learning_rates(resumed)) == list(range(1, 9))  # steps 1 to 3 from the checkpoint's history
    assert learning_rates(resumed) == learning_rates(uninterrupted)


def test_packed_blocks_are_counted_from_their_shape_without_a_gather(tmp_path, monkeypatch):
    clock = FakeClock()
    shape = dict(save_strategy="steps", save_steps=3, gradient_accumulation_steps=2, count_tokens_by_shape=True)
    args = _arguments(tmp_path, **shape)
    with pytest.raises(KeyboardInterrupt):
        _trainer(args, clock, crash_at=5).train()
    resumed = _trainer(_arguments(tmp_path, **shape), clock)
    gathers = []
    real_gather = resumed.accelerator.gather
    monkeypatch.setattr(resumed.accelerator, "gather", lambda tensor: gathers.append(tensor) or real_gather(tensor))
    resumed.train(resume_from_checkpoint=last_complete_checkpoint(args.output_dir))
    # integer scalars gathered: the label count of a whole optimizer step (2 x 64, for the loss) may be, a micro-batch's
    # token count (4 blocks of 16) never
    counts = [int(tensor) for tensor in gathers if tensor.dtype == torch.int64 and tensor.dim() == 0]
    assert resumed.args.include_num_input_tokens_seen == "no" and 4 * 16 not in counts
    assert resumed.state.num_input_tokens_seen == 8 * 2 * 4 * 16  # 8 steps of 2 micro-batches of 4 blocks of 16
    rows = [row for row in read_curve(args.output_dir) if row["loss"] is not None]
    assert rows and all(row["tokens"] == row["step"] * 2 * 4 * 16 for row in rows)


def test_the_callback_alone_budgets_a_plain_trainer(tmp_path):
    """The README's "in your own Trainer" example: stock Trainer and TrainingArguments, our callbacks."""
    from transformers import Trainer, TrainingArguments

    from hf_tbc import CurveCallback, WallClockBudgetCallback

    clock = FakeClock()
    budget = WallClockBudgetCallback("6s", eval_every="3s", clock=clock)
    plain = _trainer(_arguments(tmp_path), clock)  # borrow the tiny model and data
    args = TrainingArguments(
        output_dir=str(tmp_path / "plain"),
        max_steps=10**6,
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=1,
        save_strategy="no",
    )
    trainer = Trainer(
        model=plain.model,
        args=args,
        train_dataset=plain.train_dataset,
        eval_dataset=plain.eval_dataset,
        data_collator=plain.data_collator,
        callbacks=[budget, CurveCallback(args.output_dir, budget), OneSecondPerStep(clock)],
    )
    trainer.train()
    assert trainer.state.global_step == 6 and budget.stop_reason == "time_budget"
    assert budget.train_seconds() == pytest.approx(6.0)
    assert [row["step"] for row in read_curve(args.output_dir) if row["eval_loss"] is not None] == [3, 6]


def test_schedule_by_steps_under_a_budget_needs_max_steps(tmp_path):
    with pytest.raises(ValueError, match="--schedule_by steps with a --time_budget needs --max_steps"):
        _arguments(tmp_path, schedule_by="steps")
    args = _arguments(tmp_path, schedule_by="steps", max_steps=100, warmup_ratio=0.1)
    assert args.max_steps == 100 and args.get_warmup_steps(args.max_steps) == 10


def test_restore_callback_states_is_refused_with_a_budget(tmp_path):
    with pytest.raises(ValueError, match="--restore_callback_states_from_checkpoint true would replace the budget"):
        _arguments(tmp_path, restore_callback_states_from_checkpoint=True)


def test_sigterm_handler_is_restored_when_training_raises(tmp_path):
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    trainer = _trainer(_arguments(tmp_path), FakeClock(), crash_at=3)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert signal.getsignal(signal.SIGTERM) == previous


def _ddp_probe(tmp_path, processes: int) -> dict:
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    out = tmp_path / f"probe-{processes}"
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    launcher += (
        ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", "0"]
        if processes > 1
        else ["--cpu", "--num_processes", "1"]
    )
    done = subprocess.run(
        [*launcher, str(REPO / "tests" / "ddp_probe.py"), str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, **json.loads((out / "logged.json").read_text())}


@pytest.mark.slow
def test_two_processes_log_evaluate_and_step_on_the_mean_of_the_global_batch(tmp_path):
    """The four blocks of tests/ddp_probe.py hold 1, 2, 4 and 9 masked positions: split over two ranks, the ranks'
    label counts differ, so only a loss weighted by the global count gives one process's loss and gradient."""
    from transformers import RobertaPreLayerNormForMaskedLM

    from tests.ddp_probe import blocks

    probe = _ddp_probe(tmp_path, processes=2)
    assert probe["world_size"] == 2
    model = RobertaPreLayerNormForMaskedLM.from_pretrained(probe["out"] / "initial")
    batch = {key: torch.tensor(blocks()[key]) for key in ("input_ids", "attention_mask", "labels")}
    loss = model(**batch).loss  # one process, the whole global batch: the mean over its 16 masked positions
    loss.backward()
    expected = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    recorded = torch.load(probe["out"] / "gradients.pt")
    assert probe["loss"] == pytest.approx(loss.item(), rel=2e-5)  # transformers 5's Trainer logged 2x this
    assert probe["eval_loss"] == pytest.approx(loss.item(), rel=1e-5)
    norm = torch.linalg.vector_norm(torch.stack([grad.norm() for grad in expected.values()])).item()
    assert probe["grad_norm"] == pytest.approx(norm, rel=1e-4)  # what max_grad_norm clips
    assert recorded.keys() == expected.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(recorded[name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_a_callback_reading_the_budget_after_it_does_not_delay_the_stop(tmp_path):
    """Gradual pruning reads the budget's fraction in its own on_step_end, after the budget's: the next step's LR
    and stop rule must still read that next step's clock, not the one this late reader synced."""
    from hf_tbc.compress.schedule import GradualPruningCallback
    from hf_tbc.compress.unstructured import UnstructuredPruner

    clock = FakeClock()
    trainer = _trainer(_arguments(tmp_path), clock)
    callback = GradualPruningCallback(UnstructuredPruner(trainer.model), 0.5, end=0.5, events=4).attach(trainer)
    trainer.train()
    assert trainer.state.global_step == 8 and trainer.budget.stop_reason == "time_budget"
    assert trainer.budget.overshoot == pytest.approx(0.0) and trainer.budget.train_seconds() == pytest.approx(8.0)
    assert [step for step, _, _ in callback.history] == [1, 2, 3, 4]  # 12.5 % of 8 s per pruning event
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0  # the floor at the deadline, on this step's clock


class WeightsAtEvaluation(TrainerCallback):
    """Keeps a copy of one weight at every evaluation, by step."""

    def __init__(self):
        self.weights = {}

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        self.weights[state.global_step] = model.roberta.encoder.layer[0].output.dense.weight.detach().clone()


def test_best_checkpoint_on_the_budget_clock_is_loaded_at_the_end(tmp_path):
    """load_best_model_at_end with evaluations every 2 s of budget (no step strategy): each new best saves a
    checkpoint, only the best is kept, and the model at the end is the one evaluated best, not the last step."""
    scores = iter([0.3, 0.9, 0.5, 0.2])  # the second of the four evaluations (2, 4, 6 s, then the stop at 8 s)

    def scripted(prediction):
        return {"accuracy": next(scores)}

    args = _arguments(tmp_path, eval_every="2s", load_best_model_at_end=True, metric_for_best_model="accuracy")
    assert args.save_on_best and args.save_total_limit == 1 and args.greater_is_better
    clock = FakeClock()
    trainer = _trainer(args, clock, compute_metrics=scripted)
    seen = WeightsAtEvaluation()
    trainer.add_callback(seen)
    trainer.train()
    assert sorted(seen.weights) == [2, 4, 6, 8] and trainer.state.global_step == 8
    assert trainer.state.best_global_step == 4 and trainer.state.best_metric == 0.9
    final = trainer.model.roberta.encoder.layer[0].output.dense.weight
    assert torch.equal(final, seen.weights[4]) and not torch.equal(final, seen.weights[8])
    checkpoints = sorted(path.name for path in (tmp_path / "run").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-4"]  # saved at steps 2 and 4 (each a new best), 2 rotated away


def test_best_checkpoint_needs_evaluations_and_its_own_saves(tmp_path):
    with pytest.raises(ValueError, match="leave --save_strategy at no"):
        _arguments(tmp_path, load_best_model_at_end=True, save_strategy="steps", save_steps=10)
    with pytest.raises(ValueError, match="needs evaluations to choose from"):
        _arguments(tmp_path, time_budget=None, max_steps=5, load_best_model_at_end=True)
    native = _arguments(tmp_path, eval_every="5", load_best_model_at_end=True)  # every 5 steps: transformers' rule
    assert (native.save_strategy.value, native.save_steps, native.save_on_best) == ("steps", 5, False)


def test_a_cooldown_branch_from_a_probe_decays_the_lr_to_zero_at_its_stop(tmp_path):
    """A 4 s probe of a 20 s budget, then a branch resumed from a copy of its checkpoint that stops at 8 s with the LR
    falling linearly from the schedule's value at 6 s to zero at 8 s: the loss a run ended there would reach. The
    probe's own folder is left as it was, so the real run still continues from it."""
    clock = FakeClock()
    common = dict(time_budget="20s", warmup_ratio=0.0, warmup_steps=0, eval_every="100s", save_strategy="no")
    probe_args = _arguments(tmp_path, stop_after="4s", **common)
    _trainer(probe_args, clock).train()
    probe = Path(probe_args.output_dir)
    checkpoint = last_complete_checkpoint(str(probe))
    before = sorted(path.name for path in probe.rglob("*"))
    branch = tmp_path / "branch"
    shutil.copytree(checkpoint, branch / Path(checkpoint).name)
    branch_args = _arguments(
        tmp_path, output_dir=str(branch), stop_after="8s", cooldown="2s", resume_from_checkpoint="true", **common
    )
    trainer = _trainer(branch_args, clock)
    trainer.train()
    assert trainer.budget.stop_reason == "stop_after" and trainer.state.global_step == 8
    # the LR logged at step k is the one it ran with, set when step k - 1 ended (k - 1 seconds in)
    rates = {row["step"]: row["learning_rate"] for row in trainer.state.log_history if "learning_rate" in row}
    assert rates[5] == pytest.approx(1e-3 * (1 - 4 / 20))  # before the cool-down: the whole budget's schedule
    assert rates[7] == pytest.approx(1e-3 * (1 - 6 / 20))  # the cool-down starts from the schedule's value at 6 s
    assert rates[8] == pytest.approx(1e-3 * (1 - 6 / 20) / 2)  # halfway down at 7 s
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # zero at the stop, 8 s
    assert sorted(path.name for path in probe.rglob("*")) == before
    with pytest.raises(ValueError, match="--cooldown is the last part of --stop_after"):
        _arguments(tmp_path, cooldown="2s", **common)
