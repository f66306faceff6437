"""The advisor's cool-down branches: the branch's arguments, the forecast from rungs and the probe's own slope, and
staged probing that continues only the sizes still in contention, within its allowance."""

import dataclasses
import json
import math
from pathlib import Path

import pytest

from hf_tbc.advise import AdviceArguments
from hf_tbc.advise.ladder import COOL_SHARE, Rung, branch_arguments, read_ladder
from hf_tbc.advise.ladder_forecast import SHIFTS, LadderForecaster
from hf_tbc.advise.ladder_report import AT_PROBE_END, PER_STEP, ladder_record, naive_picks, write_ladder_advice
from hf_tbc.advise.probe import Probe
from hf_tbc.advise.run import forecast_table
from hf_tbc.advise.staging import staged_probing
from hf_tbc.errors import UsageError
from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments

# a size's loss after t seconds: mid-schedule (a probe's evaluations) and at the end of a run (a branch): each size
# falls at its own rate per doubling from its own start; the end of a run is 0.06 below the middle
LAWS = {"L2-H32": (6.8, -0.04), "L2-H64": (7.0, -0.16), "L2-H128": (7.2, -0.24)}


def mid_loss(size: str, seconds: float) -> float:
    start, slope = LAWS[size]
    return start + slope * math.log2(seconds / 10.0)


def probe_of(size: str, probe_s: float, budget_s: float = 600.0, every: float = 1.0) -> Probe:
    times = [every * n for n in range(1, int(probe_s / every) + 1)]
    return Probe(
        size=size,
        steps=int(probe_s * 10),
        train_s=probe_s,
        budget_s=budget_s,
        probe_s=probe_s,
        losses=[(int(t * 10), t, mid_loss(size, t) + 0.1) for t in times],
        evaluations=[(int(t * 10), t, mid_loss(size, t)) for t in times],
        parameters={"L2-H32": 1, "L2-H64": 2, "L2-H128": 4}[size] * 10**6,
        unigram_loss=7.5,
    )


def rung(size: str, at_s: float) -> Rung:
    end = at_s * (1 + COOL_SHARE)
    return Rung(size=size, at_s=at_s, end_s=end, steps=int(end * 10), loss=mid_loss(size, end) - 0.06, cost_s=at_s / 3)


def test_a_branch_resumes_the_probe_checkpoint_in_its_own_folder_and_cools_to_zero_by_its_end(tmp_path):
    args = PretrainingArguments(output_dir=str(tmp_path / "probe"), time_budget="10m", eval_every="1m")
    branch = branch_arguments(args, tmp_path / "branch", str(tmp_path / "probe" / "checkpoint-40"), 40.0)
    assert branch.output_dir == str(tmp_path / "branch") and branch.resume_from_checkpoint.endswith("checkpoint-40")
    assert branch.stop_after_seconds == pytest.approx(50.0) and branch.cooldown_seconds == pytest.approx(10.0)
    assert branch.time_budget_seconds == 600.0  # the probe's schedule: the branch leaves it at 40 s
    assert branch.prediction_loss_only and branch.save_every is None
    assert branch.eval_every_seconds >= branch.stop_after_seconds  # one evaluation: the one at its end
    assert args.output_dir == str(tmp_path / "probe") and args.stop_after is None  # the probe's own args untouched
    with pytest.raises(UsageError, match="would end past the 10m00s budget"):
        branch_arguments(args, tmp_path / "late", "ckpt", 500.0)


@pytest.mark.parametrize("schedule", ["warmup_stable_decay", "linear"])
def test_the_forecast_carries_the_last_rung_along_the_probe_curve_to_the_budget_over_the_schedule_shift(schedule):
    probes = [probe_of(size, 30.0) for size in LAWS]
    ladders = {size: [rung(size, 15.0), rung(size, 30.0)] for size in LAWS}
    forecaster = LadderForecaster(probes, ladders, schedule, central="straight in log time")
    central, *shift_range = SHIFTS[schedule if schedule == "warmup_stable_decay" else "other"]
    for probe in probes:
        row = forecaster.forecast(probe, 600.0)
        start, slope = LAWS[probe.size]
        assert row.slope == pytest.approx(slope, abs=1e-6)  # measured on the probe's last doubling
        expected = mid_loss(probe.size, 37.5) - 0.06 + slope * math.log2(600.0 / central / 37.5)
        assert row.forecast_loss == pytest.approx(expected, abs=1e-6)
        # the interval holds every schedule shift the range allows, and more bend the further out
        for shift in shift_range:
            assert row.forecast_low < mid_loss(probe.size, 37.5) - 0.06 + slope * math.log2(600 / shift / 37.5)
            assert row.forecast_high > mid_loss(probe.size, 37.5) - 0.06 + slope * math.log2(600 / shift / 37.5)
        assert (schedule == "linear") == any("not warmup_stable_decay" in note for note in row.notes)
        nearer = forecaster.forecast(probe, 150.0)
        assert nearer.forecast_high - nearer.forecast_low < row.forecast_high - row.forecast_low
    # the size that falls fastest per doubling overtakes: at ten minutes L2-H128 leads, at 20 seconds L2-H32
    assert min(forecaster.forecast_all(600.0), key=lambda row: row.forecast_loss).size == "L2-H128"
    assert min(forecaster.forecast_all(20.0), key=lambda row: row.forecast_loss).size == "L2-H32"


def test_the_forecast_is_straight_in_log_time_and_a_power_law_on_request_follows_a_flattening_curve():
    def loss(seconds):  # a curve that flattens: a straight line in log time through its end would overshoot
        return 2.0 + 8.0 * seconds**-0.3

    probes = [
        Probe(
            size=size,
            steps=300,
            train_s=30.0,
            budget_s=600.0,
            probe_s=30.0,
            losses=[(10 * t, float(t), loss(t) + shift) for t in range(1, 31)],
            evaluations=[(10 * t, float(t), loss(t) + shift) for t in range(1, 31)],
        )
        for size, shift in (("L2-H32", 0.0), ("L2-H64", 0.1))
    ]
    end = 37.5
    ladders = {probe.size: [Rung(probe.size, 30.0, end, 375, loss(end) - 0.05, 10.0)] for probe in probes}
    power = LadderForecaster(probes, ladders, central="power law, last 3 doublings").forecast(probes[0], 600.0)
    assert power.forecast_loss == pytest.approx(loss(600.0) - 0.05, abs=0.05)  # the fit is a grid search
    line = LadderForecaster(probes, ladders).forecast(probes[0], 600.0)
    slope = (loss(30.0) - loss(15.0)) / 1.0  # about the probe's last doubling
    assert line.forecast_loss == pytest.approx(loss(end) - 0.05 + slope * math.log2(600.0 / end), abs=0.02)
    assert line.forecast_loss < power.forecast_loss - 0.1  # the line misses the flattening, by less than its interval
    assert line.forecast_high >= loss(600.0) - 0.05


def test_a_probe_with_too_few_evaluations_takes_its_slope_from_the_rungs_or_says_it_is_assumed():
    sparse = probe_of("L2-H64", 30.0, every=15.0)  # two evaluations: no slope of its own
    forecaster = LadderForecaster(
        [sparse, probe_of("L2-H32", 30.0)],
        {"L2-H64": [rung("L2-H64", 15.0), rung("L2-H64", 30.0)], "L2-H32": [rung("L2-H32", 30.0)]},
    )
    from_rungs = forecaster.forecast(sparse, 600.0)
    assert from_rungs.support == "branches" and from_rungs.slope == pytest.approx(LAWS["L2-H64"][1], abs=1e-6)
    alone = LadderForecaster(
        [probe_of("L2-H32", 30.0, every=15.0), sparse],
        {"L2-H32": [rung("L2-H32", 30.0)], "L2-H64": [rung("L2-H64", 30.0)]},
    )
    assumed = alone.forecast(alone.probes[0], 600.0)
    assert assumed.support == "assumed" and any("assumed" in note for note in assumed.notes)
    assert assumed.forecast_low < assumed.rung_loss - 0.9  # it cannot say how far the loss falls: a wide interval


def test_the_naive_rules_read_the_probes_at_the_same_length():
    probes = [probe_of("L2-H32", 30.0), probe_of("L2-H128", 60.0)]  # the contender's probe went on
    picks = naive_picks(probes, 30.0)
    assert picks[AT_PROBE_END] == "L2-H32"  # at 30 s L2-H32 is lower (6.8 - 0.04 log2 3 against 7.2 - 0.24 log2 3)
    assert picks[PER_STEP] == "L2-H32" and picks["common_step"] == 300


def fake_train(calls: list, warmup_s=0.0, unigram=7.5):
    """A recipe that writes what the real one does for a probe (stop_after) and a branch (cool-down): the curve
    with its evaluations, the stop record with the checkpoint and its last evaluation."""

    def train(model_args, data_args, training_args):
        size, folder = model_args.model_size, Path(training_args.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stop = training_args.stop_after_seconds
        branch = training_args.cooldown_seconds is not None
        calls.append((size, "branch" if branch else "probe", stop))
        every = training_args.eval_every_seconds
        warmup = warmup_s.get(size, 0.0) if isinstance(warmup_s, dict) else warmup_s
        times = [every * n for n in range(1, int(round(stop / every)) + 1)]
        rows = [
            {"step": int(t * 10), "train_s": t, "loss": mid_loss(size, t) + 0.1, "lr": 1e-3 * min(1.0, t / warmup)}
            if warmup
            else {"step": int(t * 10), "train_s": t, "loss": mid_loss(size, t) + 0.1, "lr": 1e-3}
            for t in times
        ]
        for row in rows:
            row["eval_loss"] = mid_loss(size, row["train_s"])
        last = mid_loss(size, stop) - (0.06 if branch else 0.0)
        (folder / "curve.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        checkpoint = folder / f"checkpoint-{int(stop * 10)}"
        checkpoint.mkdir(exist_ok=True)
        record = {
            "stop_reason": "stop_after",
            "steps": int(stop * 10),
            "train_s": stop,
            "time_budget_s": training_args.time_budget_seconds,
            "stop_after_s": stop,
            "last_eval_loss": last,
            "checkpoint": str(checkpoint),
            "parameters": {"L2-H32": 1, "L2-H64": 2, "L2-H128": 4}[size] * 10**6,
            "unigram_loss": unigram.get(size, 7.5) if isinstance(unigram, dict) else unigram,
        }
        (folder / "run_summary.json").write_text(json.dumps(record))
        return record

    return train


def stage(tmp_path, sizes, allowance_s, budget="10m", warmup_s=0.0, unigram=7.5):
    calls = []
    training = PretrainingArguments(output_dir=str(tmp_path), time_budget=budget)
    train = fake_train(calls, warmup_s, unigram)
    staging = staged_probing(sizes, 30.0, allowance_s, ModelArguments(), DataTrainingArguments(), training, train)
    return staging, calls


def test_staging_continues_the_contenders_only_and_branches_each_probe_where_it_ends(tmp_path):
    staging, calls = stage(tmp_path, ["L2-H32", "L2-H64", "L2-H128"], allowance_s=10_000.0)
    first = [call for call in calls if call[2] <= 37.5 + 1e-6]
    assert sorted(first) == sorted(
        (size, kind, stop) for size in LAWS for kind, stop in (("probe", 30.0), ("branch", 37.5))
    )
    later = calls[len(first) :]
    assert later and {size for size, _, _ in later} <= set(staging.stages[0]["contenders"])
    assert "L2-H32" not in staging.stages[0]["contenders"]  # clearly behind at ten minutes: dropped after stage 1
    assert [stop for _, kind, stop in later if kind == "probe"][:1] == [60.0]
    assert len(staging.ladders["L2-H128"]) > len(staging.ladders["L2-H32"]) == 1
    assert read_ladder(str(tmp_path), "L2-H128", 600.0)[-1].end_s == staging.ladders["L2-H128"][-1].end_s
    record = ladder_record(staging, 600.0, 30.0, 10_000.0, "a test machine")
    assert record["recommended_size"] == "L2-H128"
    assert record["forecasts"]["L2-H128"]["ladder"][0] == {
        "end_s": 37.5,
        "steps": 375,
        "loss": round(mid_loss("L2-H128", 37.5) - 0.06, 4),
    }
    write_ladder_advice(staging.forecaster(), {**record, "continue": None}, str(tmp_path))
    text = (tmp_path / "advice.md").read_text()
    assert "Train L2-H128" in text and "Stage 2" in text and (tmp_path / "advice.png").is_file()
    assert "in contention were continued and branched again" in text
    again, calls_again = stage(tmp_path, ["L2-H32", "L2-H64", "L2-H128"], allowance_s=10_000.0)
    assert calls_again == [] and again.stages == staging.stages  # every probe and branch read back, nothing rerun


def test_staging_stops_where_the_next_stage_would_pass_the_allowance(tmp_path):
    staging, calls = stage(tmp_path, ["L2-H64", "L2-H128"], allowance_s=1e-9)
    assert len(staging.stages) == 1 and "allowance" in staging.stages[0]["stopped"]
    assert {stop for _, _, stop in calls} == {30.0, 37.5}
    record = ladder_record(staging, 600.0, 30.0, 1e-9, "a test machine")
    write_ladder_advice(staging.forecaster(), {**record, "continue": None}, str(tmp_path))
    text = (tmp_path / "advice.md").read_text()  # no second stage ran: the advice does not say one did
    assert "branched at the probe's end (the LR" in text and "continued and branched again" not in text


def test_the_allowance_and_first_stage_default_to_a_third_and_a_twentieth_of_the_budget():
    args = AdviceArguments(model_sizes="L2-H32,L2-H64")
    assert args.probe_seconds(600.0) == pytest.approx(30.0) and args.allowance_seconds(600.0) == pytest.approx(200.0)
    assert AdviceArguments(method="curve").probe_seconds(600.0) == pytest.approx(60.0)
    with pytest.raises(UsageError, match="--probe_allowance"):
        AdviceArguments(probe_allowance="0s").allowance_seconds(600.0)


def test_a_first_probe_still_in_its_warmup_is_lengthened_before_it_is_branched(tmp_path):
    staging, calls = stage(tmp_path, ["L2-H64", "L2-H128"], allowance_s=10_000.0, warmup_s=20.0)
    # its LR peaked at 20 s (step 200): twice that is 400 steps, 40 s at its step time; lengthened to 1.1 times that,
    # every size probed first, then every one lengthened, then every one branched
    sizes = ("L2-H64", "L2-H128")
    assert calls[:2] == [(size, "probe", 30.0) for size in sizes]
    assert sorted(calls[2:4]) == sorted((size, "probe", 44.0) for size in sizes)  # the cheaper first: a near tie here
    assert calls[4:6] == [(size, "branch", 55.0) for size in sizes]
    assert staging.stages[0]["probe_s"] == {"L2-H64": 44.0, "L2-H128": 44.0}


def test_a_first_probe_still_on_the_unigram_plateau_is_doubled_until_it_leaves_it(tmp_path):
    # L2-H128's validation loss: 6.82 at 30 s, 6.58 at 60 s; its unigram line 6.9 (a probe is off it 0.1 below)
    staging, calls = stage(tmp_path, ["L2-H64", "L2-H128"], allowance_s=10_000.0, unigram={"L2-H128": 6.9})
    assert [call for call in calls if call[0] == "L2-H128"][:3] == [
        ("L2-H128", "probe", 30.0),
        ("L2-H128", "probe", 60.0),
        ("L2-H128", "branch", 75.0),
    ]
    assert calls[:5] == [  # the first stage: L2-H64 is off its line at once, and branched where its probe ended
        ("L2-H64", "probe", 30.0),
        ("L2-H128", "probe", 30.0),
        ("L2-H128", "probe", 60.0),
        ("L2-H64", "branch", 37.5),
        ("L2-H128", "branch", 75.0),
    ]


def test_held_back_probes_share_the_allowance_breadth_first_instead_of_the_first_size_spending_it(
    tmp_path, monkeypatch
):
    """L2-H64 stays on its unigram line (6.5) until 240 s, L2-H128 (line 6.9) leaves its own at 60 s. Each second of
    training costs a second of wall-clock here. Lengthening the first size probed as far as the allowance lets would
    spend it on L2-H64 and leave L2-H128 on its plateau; in rounds, both are doubled once before L2-H64 again."""
    import hf_tbc.advise.ladder as ladder_module
    import hf_tbc.advise.staging as staging_module

    clock = {"now": 0.0}
    trained: dict = {}

    class FakeTime:
        @staticmethod
        def monotonic():
            return clock["now"]

    monkeypatch.setattr(staging_module, "time", FakeTime)
    monkeypatch.setattr(ladder_module, "time", FakeTime)
    calls = []
    inner = fake_train(calls, 0.0, {"L2-H64": 6.5, "L2-H128": 6.9})

    def train(model_args, data_args, training_args):
        size, stop = model_args.model_size, training_args.stop_after_seconds
        if training_args.cooldown_seconds is not None:
            clock["now"] += stop - stop / (1 + COOL_SHARE)  # a branch trains its cool-down only
        else:
            clock["now"] += stop - trained.get(size, 0.0)  # a lengthened probe resumes where it stopped
            trained[size] = stop
        return inner(model_args, data_args, training_args)

    training = PretrainingArguments(output_dir=str(tmp_path), time_budget="10m", lr_scheduler_type="linear")
    staging = staged_probing(
        ["L2-H64", "L2-H128"], 30.0, 150.0, ModelArguments(), DataTrainingArguments(), training, train
    )
    probes = [(size, stop) for size, kind, stop in calls if kind == "probe"]
    assert probes == [("L2-H64", 30.0), ("L2-H128", 30.0), ("L2-H64", 60.0), ("L2-H128", 60.0)]
    assert staging.stages[0]["probe_s"] == {"L2-H64": 60.0, "L2-H128": 60.0}
    # a third doubling of L2-H64 (to 120 s, with both branches, the other probe not counted) would pass the 150 s
    # allowance; what was spent, the leader's probe not counted, is within it
    assert staging.cost_s(staging.stages[0]["leader"]) <= 150.0


def test_no_forecast_where_a_probe_cannot_leave_its_warmup_within_the_allowance(tmp_path):
    staging, _ = stage(tmp_path, ["L2-H64", "L2-H128"], allowance_s=1e-9, warmup_s=20.0)
    record = ladder_record(staging, 600.0, 30.0, 1e-9, "a test machine")
    why = record["no_forecast"]
    assert why.startswith("no forecast for 10m00s: the probes of L2-H64 (300 steps, inside its warmup), L2-H128")
    # each needs 40 s (twice its 200-step warmup), a quarter more for its branch, times two sizes
    assert "leaving warmup takes about 1m40s of probing here: pass --probe_allowance 100s" in why
    assert "--time_budget" not in why  # a third of this budget would do: the allowance was the limit
    # no forecast, but a pick on what was measured: the lower validation loss at the probes' common end (30 s)
    assert record["basis"] == "measured" and not record["clear"] and record["overlapping"] == ["L2-H128"]
    assert record["recommended_size"] == "L2-H64" and record["measured"]["at_s"] == 30.0
    assert record["measured"]["losses"] == {size: round(mid_loss(size, 30.0), 4) for size in ("L2-H64", "L2-H128")}
    assert all(row["forecast_loss"] is None for row in record["forecasts"].values()) and record["crossovers"] == []
    write_ladder_advice(staging.forecaster(), {**record, "continue": None}, str(tmp_path))
    text = (tmp_path / "advice.md").read_text()
    assert "**Train L2-H64: not a forecast.** No forecast for 10m00s: the probes of L2-H64 (300 steps" in text
    assert why[1:] in text
    assert "at 30s of training, the latest time every probe reached, L2-H64 had the lowest validation loss" in text
    from hf_tbc.advise.outcome import forecast_lines

    lines = "\n".join(forecast_lines(record, {"L2-H64": 6.2, "L2-H128": 6.0}, "L2-H128"))  # the study's report
    assert "recommended **L2-H64**: wrong (not a forecast: the probes could not support one" in lines
    assert "| L2-H128 | 300 | no forecast | too short | 6.000 |" in lines
    for ladder in staging.ladders.values():  # branches that cooled over as long again as their probe (decay 0.5)
        ladder[:] = [dataclasses.replace(rung, end_s=2 * rung.at_s) for rung in ladder]
    record = ladder_record(staging, 600.0, 30.0, 1e-9, "a test machine")
    assert "leaving warmup takes about 2m40s of probing here: pass --probe_allowance 160s" in record["no_forecast"]
    for probe in staging.probes.values():  # nothing measured to pick on either: the one-line error
        probe.evaluations = []
    with pytest.raises(UsageError, match=r"no forecast for 10m00s: the probes of L2-H64 \(300 steps"):
        ladder_record(staging, 600.0, 30.0, 1e-9, "a test machine")


def test_the_end_of_warmup_is_read_between_sparse_log_rows_and_a_ramp_still_rising_is_not_over():
    ramp = [(step, 1e-3 * min(1.0, step / 31)) for step in (10, 20, 28, 30, 38, 40, 50)]
    probe = Probe(size="s", steps=75, train_s=48.0, budget_s=960.0, probe_s=48.0, losses=[], learning_rates=ramp)
    assert probe.warmup_end() == 31 and probe.past_warmup()  # the first logged peak is step 38: 76 would be needed
    rising = Probe(size="s", steps=30, train_s=30.0, budget_s=960.0, probe_s=30.0, losses=[(15, 15.0, 7.0)])
    rising.learning_rates, rising.warmup_steps = ramp[:4], 50
    assert rising.warmup_end() == 30 and not rising.past_warmup()
    assert rising.past_warmup_s() == pytest.approx(100.0)  # twice its 50 warmup steps at one second a step


def test_the_report_names_each_rule_of_thumbs_pick_next_to_the_outcome(tmp_path):
    from hf_tbc.advise.outcome import forecast_lines

    staging, _ = stage(tmp_path, ["L2-H32", "L2-H64", "L2-H128"], allowance_s=10_000.0)
    advice = ladder_record(staging, 600.0, 30.0, 10_000.0, "a test machine")
    lines = "\n".join(forecast_lines(advice, {"L2-H32": 6.4, "L2-H64": 6.1, "L2-H128": 5.8}, "L2-H128"))
    assert "recommended **L2-H128**: right" in lines
    assert "lowest at the probes' end picked L2-H32 (wrong); lowest per step picked L2-H32 (wrong)" in lines
    assert "L2-H128 overtakes L2-H32 already at the shortest budget scanned" in lines  # the crossing is at 56 s


def test_a_size_whose_probe_stays_in_its_warmup_is_not_ranked_and_the_others_still_are(tmp_path):
    sizes = ["L2-H32", "L2-H64", "L2-H128"]
    staging, _ = stage(tmp_path, sizes, allowance_s=1e-9, warmup_s={"L2-H128": 40.0})
    record = ladder_record(staging, 600.0, 30.0, 1e-9, "a test machine")
    assert record["without_forecast"] == ["L2-H128"] and record["forecasts"]["L2-H128"]["forecast_loss"] is None
    assert record["recommended_size"] == "L2-H64" and not record["clear"] and "L2-H128" in record["overlapping"]
    write_ladder_advice(staging.forecaster(), {**record, "continue": None}, str(tmp_path))
    assert "L2-H128 could not be forecast" in (tmp_path / "advice.md").read_text()
    line = forecast_table(record["forecasts"])  # the log's summary names it too, instead of failing on it
    assert line.endswith("L2-H128 no forecast (too short)") and line.startswith("L2-H32 ")


@pytest.mark.slow
def test_runs_in_one_process_each_mask_their_own_validation_set_from_the_shared_data(tmp_path, english_lines):
    """The advisor trains many runs in one process on data prepared once: a run must not leave its masked
    validation set in the shared data, or the next run masks it again and scores a different set."""
    from hf_tbc.cli import parse_args
    from hf_tbc.tasks.registry import TASKS
    from tests.conftest import TINY_MLM

    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(english_lines * 4) + "\n")
    task, unigram = TASKS["mlm"], []
    for index in range(2):
        flags = [*TINY_MLM, "--train_file", str(corpus), "--time_budget", "20s", "--stop_after", "2s"]
        arguments = parse_args(task.arguments, [*flags, "--output_dir", str(tmp_path / f"run{index}")])
        unigram.append(task.train(*arguments)["unigram_loss"])
    assert unigram[0] == unigram[1]


def test_a_size_whose_last_rung_is_still_near_the_unigram_line_is_not_ranked():
    probes = [probe_of(size, 30.0) for size in LAWS]  # unigram line 7.5
    ladders = {size: [rung(size, 30.0)] for size in LAWS}
    ladders["L2-H128"] = [Rung("L2-H128", 30.0, 37.5, 375, 7.45, 10.0)]  # 0.05 below the line
    rows = {row.size: row for row in LadderForecaster(probes, ladders).forecast_all(600.0)}
    assert rows["L2-H128"].support == "on the plateau" and rows["L2-H128"].as_row()["forecast_loss"] is None
    assert any("unigram" in note for note in rows["L2-H128"].notes)
    assert rows["L2-H64"].support == "branches"
