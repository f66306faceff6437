import math
import os
import signal

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_tbc.budget import TimeBasedLRScheduler, WallClockBudgetCallback, format_duration, lr_multiplier, parse_duration


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2h", 7200),
        ("5400", 5400),
        (" 1h 0m 5s ", 3605),
        ("0.5h", 1800),
        ("2.5", 2.5),
        (30, 30),
        (12.5, 12.5),
        ("1H30M", 5400),
    ],
)
def test_parse_duration_accepts_units_and_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "h", "1m30h", "-5", "0", "0s", "nan", "inf", True, -3])
def test_parse_duration_rejects_bad_budgets_naming_the_value(text):
    with pytest.raises(ValueError, match="time budget"):
        parse_duration(text)


def test_format_duration_round_trips():
    for seconds in (5, 65, 3600, 3725, 7199):
        assert parse_duration(format_duration(seconds)) == seconds


def test_lr_multiplier_warmup_then_floor_exactly_at_deadline():
    assert lr_multiplier(0.0, "linear", warmup_fraction=0.1) == 0.0
    assert lr_multiplier(0.05, "linear", warmup_fraction=0.1) == pytest.approx(0.5)
    assert lr_multiplier(0.1, "linear", warmup_fraction=0.1) == pytest.approx(1.0)
    assert lr_multiplier(0.55, "linear", warmup_fraction=0.1) == pytest.approx(0.5)
    assert lr_multiplier(0.55, "cosine", warmup_fraction=0.1) == pytest.approx(0.5)
    assert lr_multiplier(0.325, "cosine", warmup_fraction=0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    for schedule in ("linear", "cosine"):
        assert lr_multiplier(1.0, schedule, 0.1, min_lr_ratio=0.1) == pytest.approx(0.1)
        assert lr_multiplier(1.7, schedule, 0.1, min_lr_ratio=0.1) == pytest.approx(0.1)  # past the deadline
        assert lr_multiplier(0.999, schedule, 0.1, min_lr_ratio=0.1) > 0.1
    assert lr_multiplier(0.9, "constant") == 1.0
    # warmup_stable_decay: the peak until the last fifth, then linearly to the floor at the deadline
    assert lr_multiplier(0.05, "warmup_stable_decay", 0.1) == pytest.approx(0.5)
    assert lr_multiplier(0.5, "warmup_stable_decay", 0.1) == lr_multiplier(0.8, "warmup_stable_decay", 0.1) == 1.0
    assert lr_multiplier(0.9, "warmup_stable_decay", 0.1) == pytest.approx(0.5)
    assert lr_multiplier(0.9, "warmup_stable_decay", 0.1, min_lr_ratio=0.2) == pytest.approx(0.6)
    assert lr_multiplier(0.75, "warmup_stable_decay", 0.0, decay_fraction=0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="--decay_ratio"):
        lr_multiplier(0.5, "warmup_stable_decay", decay_fraction=0.0)


def test_lr_multiplier_rejects_unknown_schedules_and_bad_fractions():
    with pytest.raises(ValueError, match="polynomial"):
        lr_multiplier(0.5, "polynomial")
    with pytest.raises(ValueError, match="warmup"):
        lr_multiplier(0.5, "linear", warmup_fraction=1.0)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        lr_multiplier(0.5, "linear", min_lr_ratio=2.0)


def _fresh(tmp_path, **kwargs):
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **kwargs)
    return args, TrainerState(), TrainerControl()


def _step(callback, args, state, control):
    state.global_step += 1
    control = TrainerControl()
    return callback.on_step_end(args, state, control)


def test_budget_stops_at_the_step_nearest_the_deadline_and_asks_for_final_eval_and_save(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback("10s", clock=clock, eval_every=100)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    for _ in range(9):
        clock.advance(1.05)
        control = _step(budget, args, state, control)
        assert not control.should_training_stop
    clock.advance(1.05)
    control = _step(budget, args, state, control)
    assert control.should_training_stop and control.should_evaluate and control.should_save
    assert state.global_step == 10 and budget.stop_reason == "time_budget"  # 10.5 s is nearer 10 than 9.45 s
    assert budget.remaining() == 0.0 and budget.overshoot == pytest.approx(0.5)


@pytest.mark.parametrize("time_budget, stop_step, overshoot", [(10, 3, -1.0), (11, 4, 1.0), (10.5, 4, 1.5)])
def test_slow_steps_stop_at_the_end_nearest_the_deadline_not_the_first_past_it(
    tmp_path, time_budget, stop_step, overshoot
):
    """3 s steps end at 3, 6, 9, 12 s: with 10 s the end at 9 s is nearer than 12 s, with 11 s the one at 12 s is;
    10.5 s is a tie, which spends the budget rather than leaving it unused."""
    clock = FakeClock()
    budget = WallClockBudgetCallback(time_budget, clock=clock)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    while not control.should_training_stop:
        clock.advance(3.0)
        control = _step(budget, args, state, control)
    assert state.global_step == stop_step and budget.overshoot == pytest.approx(overshoot)
    assert budget.step_seconds() == pytest.approx(3.0)


def test_the_step_estimate_is_a_median_so_one_slow_step_does_not_end_training(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback(100, clock=clock)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    for seconds in [1.0] * 10 + [60.0]:  # e.g. a step that waited on a checkpoint upload
        clock.advance(seconds)
        control = _step(budget, args, state, control)
    assert not control.should_training_stop and budget.step_seconds() == pytest.approx(1.0)


def test_evaluation_and_save_time_is_excluded_unless_asked(tmp_path):
    for includes_eval, expected_stop in ((False, 10), (True, 6)):
        clock = FakeClock()
        budget = WallClockBudgetCallback(10, budget_includes_eval=includes_eval, clock=clock)
        args, state, control = _fresh(tmp_path)
        budget.on_train_begin(args, state, control)
        while not control.should_training_stop:
            clock.advance(1.0)
            control = _step(budget, args, state, control)
            clock.advance(0.5)  # an evaluation after every step ...
            budget.on_evaluate(args, state, control)
            clock.advance(0.5)  # ... and a checkpoint
            budget.on_save(args, state, control)
        assert state.global_step == expected_stop
        assert budget.total_seconds() == pytest.approx(2.0 * expected_stop)
        assert budget.train_seconds() == pytest.approx(1.0 * expected_stop)


def test_time_based_eval_and_save_intervals(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback("60s", eval_every="10s", save_every=25, clock=clock)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    evaluated, saved = [], []
    while not control.should_training_stop:
        clock.advance(3.0)
        control = _step(budget, args, state, control)
        if control.should_evaluate:
            evaluated.append(state.global_step)
        if control.should_save:
            saved.append(state.global_step)
    assert evaluated == [4, 7, 10, 14, 17, 20]  # first steps past 10, 20, ... 60 s (the last one is the final eval)
    assert saved == [9, 17, 20]  # past 25 s and 50 s, then the final save


def test_elapsed_time_travels_in_checkpoint_state_and_resume_gets_only_the_rest(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback("10s", clock=clock)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    for _ in range(6):
        clock.advance(1.0)
        control = _step(budget, args, state, control)
    saved = budget.state()  # what Trainer._save_checkpoint writes into trainer_state.json
    assert saved["attributes"]["train_seconds_before"] == pytest.approx(6.0)
    for _ in range(2):  # steps after the checkpoint are lost when the process is killed
        clock.advance(1.0)
        _step(budget, args, state, control)

    resumed = WallClockBudgetCallback("10s", clock=clock)
    state = TrainerState(global_step=6, stateful_callbacks={"WallClockBudgetCallback": saved})
    control = TrainerControl()
    clock.advance(100.0)  # time while the job was down does not count
    resumed.on_train_begin(args, state, control)
    steps = 0
    while not control.should_training_stop:
        clock.advance(1.0)
        control = _step(resumed, args, state, control)
        steps += 1
    assert steps == 4 and state.global_step == 10


def test_stop_after_ends_a_probe_on_the_whole_budgets_schedule_and_the_resume_trains_the_rest(tmp_path):
    """A 12 s probe of a 120 s budget: it stops at the step nearest 12 s with an evaluation and a checkpoint, the LR
    at its end is the whole budget's (not a 12 s schedule's), and resuming without stop_after trains to 120 s."""
    clock = FakeClock()
    budget = WallClockBudgetCallback("120s", clock=clock, stop_after="12s", eval_every=100)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    while not control.should_training_stop:
        clock.advance(2.5)  # steps end at 2.5, 5, ..., 12.5 s: 12.5 is nearer 12 than 10
        control = _step(budget, args, state, control)
    assert budget.stop_reason == "stop_after" and state.global_step == 5
    assert control.should_evaluate and control.should_save
    assert budget.fraction() == pytest.approx(12.5 / 120)
    assert lr_multiplier(budget.fraction(), "linear", 0.02) == pytest.approx(1 - (12.5 / 120 - 0.02) / 0.98)
    saved = budget.state()
    budget.on_train_end(args, state, control)

    resumed = WallClockBudgetCallback("120s", clock=clock)  # the same run, continued
    state = TrainerState(global_step=5, stateful_callbacks={"WallClockBudgetCallback": saved})
    control = TrainerControl()
    resumed.on_train_begin(args, state, control)
    while not control.should_training_stop:
        clock.advance(2.5)
        control = _step(resumed, args, state, control)
    assert resumed.stop_reason == "time_budget" and state.global_step == 48  # 48 x 2.5 s = 120 s, probe included


def test_stop_after_must_end_before_the_budget():
    with pytest.raises(ValueError, match="--stop_after 2m00s is not before the end of the 1m00s budget"):
        WallClockBudgetCallback("1m", stop_after="2m")


def test_fresh_run_ignores_state_from_a_previous_train_call(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback("10s", clock=clock)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    clock.advance(7)
    _step(budget, args, state, control)
    budget.on_train_end(args, state, control)
    budget.on_train_begin(args, TrainerState(), TrainerControl())
    assert budget.elapsed == 0.0


def test_sigterm_saves_and_stops_without_final_eval(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback("1h", clock=clock)
    args, state, control = _fresh(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    budget.on_train_begin(args, state, control)
    try:
        clock.advance(1)
        assert not _step(budget, args, state, control).should_training_stop
        os.kill(os.getpid(), signal.SIGTERM)
        control = _step(budget, args, state, control)
        assert control.should_save and control.should_training_stop and not control.should_evaluate
        assert budget.stop_reason == "preempted"
    finally:
        budget.on_train_end(args, state, control)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_time_based_scheduler_follows_the_budget_clock(tmp_path):
    clock = FakeClock()
    budget = WallClockBudgetCallback("100s", clock=clock)
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = TimeBasedLRScheduler(optimizer, budget, "linear", warmup_fraction=0.1, min_lr_ratio=0.0)
    assert scheduler.get_last_lr() == [0.0]
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    seen = {}
    for _ in range(10):
        clock.advance(10.0)
        optimizer.step()
        budget.on_optimizer_step(args, state, control)  # the Trainer's order: optimizer, this event, then the LR
        scheduler.step()  # syncs the clock for this step; on_step_end reuses it
        control = _step(budget, args, state, control)
        seen[state.global_step] = scheduler.get_last_lr()[0]
    assert seen[1] == pytest.approx(1.0)  # end of warmup at 10 s
    assert seen[6] == pytest.approx(1.0 - 50 / 90)
    assert seen[10] == pytest.approx(0.0)  # the floor exactly at the deadline
    assert control.should_training_stop and state.global_step == 10
    assert "budget" not in scheduler.state_dict()


@pytest.fixture
def one_process_group(tmp_path):
    """A real gloo process group of one rank, so the budget's collective runs as under DDP."""
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    torch.distributed.destroy_process_group()


def test_sigterm_during_the_collective_is_not_lost(tmp_path, one_process_group, monkeypatch):
    clock = FakeClock()
    budget = WallClockBudgetCallback("1h", clock=clock)
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    real_all_reduce = torch.distributed.all_reduce

    def all_reduce_interrupted(tensor, *args, **kwargs):  # the signal lands while the message is in flight
        budget._on_sigterm(signal.SIGTERM, None)
        monkeypatch.setattr(torch.distributed, "all_reduce", real_all_reduce)
        return real_all_reduce(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce_interrupted)
    try:
        clock.advance(1)
        first = _step(budget, args, state, control)
        assert not first.should_training_stop  # this step's decision was already agreed without it ...
        second = _step(budget, args, state, control)
        # ... the next has it
        assert second.should_training_stop and second.should_save and budget.stop_reason == "preempted"
    finally:
        budget.on_train_end(args, state, control)


def test_control_message_travels_on_cpu_even_when_training_uses_nccl(tmp_path, one_process_group, monkeypatch):
    made, seen = [], []
    monkeypatch.setattr(torch.distributed, "get_backend", lambda group=None: "nccl")
    monkeypatch.setattr(torch.distributed, "new_group", lambda **kwargs: made.append(kwargs) or "gloo-group")
    real_all_reduce = torch.distributed.all_reduce

    def recording_all_reduce(tensor, op=None, group=None, **kwargs):
        seen.append((tensor.device.type, group))
        return real_all_reduce(tensor, op=op)

    monkeypatch.setattr(torch.distributed, "all_reduce", recording_all_reduce)
    for _ in range(2):  # a second run in the same process group reuses the group: new_group is a collective
        budget = WallClockBudgetCallback("1h", clock=FakeClock())
        args, state, control = _fresh(tmp_path)
        budget.on_train_begin(args, state, control)
        _step(budget, args, state, control)
        budget.on_train_end(args, state, control)
    assert made == [{"backend": "gloo"}]
    assert seen and all(item == ("cpu", "gloo-group") for item in seen)


def test_restoring_callback_states_is_refused(tmp_path):
    budget = WallClockBudgetCallback("1h", clock=FakeClock())
    args, state, control = _fresh(tmp_path, restore_callback_states_from_checkpoint=True)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ValueError, match="restore_callback_states_from_checkpoint.*leave it"):
        budget.on_train_begin(args, state, control)
    assert signal.getsignal(signal.SIGTERM) == previous


def test_a_warmup_floor_in_steps_holds_the_lr_down_for_a_size_that_makes_few_steps(tmp_path):
    """With 2 % warmup of a 100 s budget but --warmup_steps 4, a size making one 10 s step at a time warms up over
    4 steps, not one; after that the time-based decay still reaches the floor at the deadline."""
    clock = FakeClock()
    budget = WallClockBudgetCallback("100s", clock=clock)
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = TimeBasedLRScheduler(optimizer, budget, "linear", warmup_fraction=0.02, warmup_steps=4)
    first = scheduler.get_last_lr()[0]
    args, state, control = _fresh(tmp_path)
    budget.on_train_begin(args, state, control)
    seen = {}
    for _ in range(10):
        clock.advance(10.0)
        optimizer.step()
        budget.on_optimizer_step(args, state, control)
        scheduler.step()
        control = _step(budget, args, state, control)
        seen[state.global_step] = scheduler.get_last_lr()[0]  # the LR of the next step
    assert first == 0.0  # the time ramp starts at 0, as without the floor
    assert [round(seen[step], 4) for step in (1, 2, 3)] == [0.5, 0.75, round(1 - 28 / 98, 4)]
    assert seen[10] == pytest.approx(0.0)
    assert scheduler.state_dict()["warmup_steps"] == 4


def test_warmup_steps_must_be_whole_and_join_the_ratio_on_step_schedules(tmp_path):
    from hf_tbc.budget.arguments import BudgetTrainingArguments

    def arguments(**kwargs):
        return BudgetTrainingArguments(output_dir=str(tmp_path), report_to="none", **kwargs)

    with pytest.raises(ValueError, match="whole number of optimizer steps"):
        arguments(time_budget="1m", warmup_steps=0.5)
    assert arguments(time_budget="1m", warmup_steps=30).warmup_steps == 30
    both = arguments(max_steps=1000, warmup_ratio=0.1, warmup_steps=50)
    assert both.get_warmup_steps(1000) == 100  # the longer of the two
    assert arguments(max_steps=1000, warmup_ratio=0.01, warmup_steps=50).get_warmup_steps(1000) == 50


def test_warmup_stable_decay_by_steps_decays_over_the_last_decay_ratio_of_the_steps(tmp_path):
    import torch

    from hf_tbc.budget.arguments import BudgetTrainingArguments
    from hf_tbc.budget.trainer import BudgetTrainer

    args = BudgetTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=10,
        learning_rate=1.0,
        lr_scheduler_type="warmup_stable_decay",
        schedule_by="steps",
        report_to="none",
        decay_ratio=0.2,
        use_cpu=True,
    )
    trainer = BudgetTrainer(model=torch.nn.Linear(2, 2), args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    rates = []
    for _ in range(10):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert rates[:9] == [1.0] * 9 and rates[9] == pytest.approx(0.5)  # held, then down over the last 2 (to 0 at 10)
    assert args.lr_scheduler_kwargs in ({}, None)  # the parsed arguments are left as parsed


def test_a_resume_does_not_call_tied_weights_missing_but_names_what_really_is(tmp_path):
    """A checkpoint holds one copy of the output layer tied to the embeddings; loading it leaves the other name
    "missing" though filled. Those are not reported; a parameter the checkpoint lacks still is."""
    from safetensors.torch import load_file
    from transformers import RobertaConfig, RobertaForMaskedLM

    from hf_tbc.budget.trainer import filled_by_a_tied_twin

    shape = dict(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = RobertaForMaskedLM(RobertaConfig(**shape))
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    missing = model.load_state_dict(state, strict=False).missing_keys
    assert "lm_head.decoder.weight" in missing and filled_by_a_tied_twin(model, missing) == []
    del state["lm_head.dense.weight"], state["roberta.embeddings.word_embeddings.weight"]
    missing = model.load_state_dict(state, strict=False).missing_keys
    # the embeddings and their tied twin both absent: both are really missing, as is the dense layer
    assert sorted(filled_by_a_tied_twin(model, missing)) == sorted(
        ["lm_head.dense.weight", "roberta.embeddings.word_embeddings.weight", "lm_head.decoder.weight"]
    )
