"""The size advisor: the curve fit, the two matching forms, intervals that widen where a probe is short, the advice
files, the flags, and (slow) the recipe end to end on tiny sizes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_tbc.advise import AdviceArguments, Probe, crossover_budget
from hf_tbc.advise.forecast import BREAK_RISK_RATIO, Forecaster, fit_power_law
from hf_tbc.advise.report import advice_record, write_advice
from hf_tbc.advise.run import continue_command
from tests.conftest import REPO, TINY_MLM


def curve(steps):
    return 2.0 + 6.0 * np.power(np.asarray(steps, float), -0.25)


def synthetic_probe(size, step_s, loss_of_step, probe_s=30.0, budget_s=300.0, every=10, parameters=1e6, noise=0.0):
    """A probe whose training loss follows ``loss_of_step`` exactly (plus ``noise``), logged every ``every`` steps."""
    steps = int(probe_s / step_s)
    rng = np.random.default_rng(1)
    logged = list(range(every, steps + 1, every))
    losses = [(n, n * step_s, float(loss_of_step(n)) + noise * rng.standard_normal()) for n in logged]
    return Probe(
        size=size,
        steps=steps,
        train_s=steps * step_s,
        budget_s=budget_s,
        probe_s=probe_s,
        losses=losses,
        evaluations=[(steps, steps * step_s, float(loss_of_step(steps)) + 0.05)],
        learning_rates=[(n, 1e-3) for n in logged],
        parameters=int(parameters),
        unigram_loss=7.0,
    )


def test_the_power_law_fit_recovers_a_known_curve():
    steps = np.arange(50, 500, 10)
    fit = fit_power_law(steps, curve(steps))
    assert fit.exponent == pytest.approx(0.25, rel=0.1)
    assert float(fit(5000)) == pytest.approx(float(curve(5000)), abs=0.02)


def test_a_size_that_is_a_per_step_speed_up_is_matched_as_one_and_forecast():
    small = synthetic_probe("small", 0.1, curve, noise=0.01)
    large = synthetic_probe("large", 0.4, lambda n: curve(2.5 * n), parameters=8e6, noise=0.01)
    forecaster = Forecaster([small, large])
    fitted = forecaster.matches["large"]
    assert fitted.form == "speed-up" and fitted.measured
    assert fitted.speedup_low <= 2.5 <= fitted.speedup_high and fitted.speedup == pytest.approx(2.5, rel=0.1)
    row = forecaster.forecast(large, 300.0)
    truth = float(curve(2.5 * 750)) + 0.05  # 750 steps in 300 s, plus the eval offset the probes show
    assert row.forecast_low <= truth <= row.forecast_high and row.forecast_loss == pytest.approx(truth, abs=0.05)
    assert row.support == "matched"
    # a constant speed-up 2.5x at 4x the step time: the small size stays ahead at every budget
    assert crossover_budget(forecaster, small, large, [60.0, 300.0, 3000.0, 30000.0]) is None


def test_a_lasting_lead_forecasts_where_the_larger_size_overtakes():
    small = synthetic_probe("small", 0.1, curve, probe_s=300.0, budget_s=3000.0)
    large = synthetic_probe("large", 1.0, lambda n: curve(n) - 0.3, probe_s=300.0, budget_s=3000.0, parameters=8e6)
    forecaster = Forecaster([small, large])
    assert forecaster.matches["large"].form == "lead"
    assert forecaster.matches["large"].lead == pytest.approx(0.3, abs=0.02)
    budgets = list(np.geomspace(300, 1e6, 200))
    found = crossover_budget(forecaster, small, large, budgets)
    # analytically, with 10x the steps for the small size: 6 n^-1/4 (1 - 10^-1/4) = 0.3 at n = N_large = budget / 1 s
    n_large = (6 * (1 - 10**-0.25) / 0.3) ** 4
    assert found == pytest.approx(n_large * 1.0, rel=0.3)
    assert crossover_budget(forecaster, small, large, budgets, form="speed-up") is None


def test_a_probe_too_short_to_match_is_assumed_and_says_so():
    small = synthetic_probe("small", 0.1, curve)
    large = synthetic_probe("large", 1.5, lambda n: curve(2.0 * n), parameters=9e6)  # 20 steps: two log rows
    forecaster = Forecaster([small, large])
    row = forecaster.forecast(large, 300.0)
    assert row.support == "assumed" and row.speedup_low == 1.0 and row.speedup_high == pytest.approx(3.0)
    assert any("too few steps" in note for note in row.notes)
    assert row.forecast_high - row.forecast_low > 0.1


def test_a_forecast_far_beyond_the_probes_carries_the_break_warning():
    small = synthetic_probe("small", 0.1, curve)
    large = synthetic_probe("large", 0.4, lambda n: curve(2.5 * n), parameters=8e6)
    row = Forecaster([small, large]).forecast(small, 300.0)
    assert row.extrapolation == pytest.approx(10.0, rel=0.01) and row.extrapolation > BREAK_RISK_RATIO
    assert any("break" in note for note in row.notes)


def test_the_advice_files_say_what_to_train_with_intervals(tmp_path):
    small = synthetic_probe("small", 0.1, curve, noise=0.01)
    large = synthetic_probe("large", 0.4, lambda n: curve(2.5 * n), parameters=8e6, noise=0.01)
    forecaster = Forecaster([small, large])
    record = advice_record(forecaster, 300.0, 30.0, "a test machine", "accelerate launch recipes/run_mlm.py ...")
    write_advice(forecaster, record, str(tmp_path))
    saved = json.loads((tmp_path / "advice.json").read_text())
    assert saved["recommended_size"] == "small"
    for size in ("small", "large"):
        row = saved["forecasts"][size]
        assert row["forecast_low"] <= row["forecast_loss"] <= row["forecast_high"]
    assert saved["crossovers"][0]["smaller"] == "small" and "if_lead_stays_s" in saved["crossovers"][0]
    text = (tmp_path / "advice.md").read_text()
    assert "**Train small.**" in text and "| large |" in text and "accelerate launch" in text
    assert (tmp_path / "advice.png").stat().st_size > 10_000


def test_the_advisor_flags_are_checked_before_anything_runs():
    with pytest.raises(ValueError, match="two or more"):
        AdviceArguments(model_sizes="L2-H128").sizes()
    with pytest.raises(ValueError, match="repeats"):
        AdviceArguments(model_sizes="L2-H128,L2-H128").sizes()
    with pytest.raises(ValueError, match="shorter than --time_budget"):
        AdviceArguments(probe_budget="10m").probe_seconds(300.0)
    with pytest.raises(ValueError, match="--time_budget"):
        AdviceArguments().probe_seconds(None)
    assert AdviceArguments(method="curve").probe_seconds(600.0) == pytest.approx(60.0)


def test_the_continue_command_resumes_the_probe_without_the_advisor_flags():
    argv = ["--model_sizes", "L2-H32,L2-H64", "--time_budget", "5m", "--probe_budget=30s", "--overwrite_output_dir"]
    argv += ["--output_dir", "out", "--block_size", "64", "--continue_winner"]
    command = continue_command(argv, "out", "L2-H64")
    assert command.startswith("accelerate launch recipes/run_mlm.py --time_budget 5m --block_size 64")
    assert "--model_size L2-H64 --output_dir out/probes/L2-H64 --resume_from_checkpoint true" in command
    for dropped in ("--model_sizes", "--probe_budget", "--overwrite_output_dir", "--continue_winner"):
        assert dropped not in command
    assert continue_command(["flags.yaml"], "out", "L2-H64") is None


@pytest.mark.slow
def test_the_advisor_probes_forecasts_and_continues_the_winner(tmp_path, english_lines):
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(english_lines * 4) + "\n")
    out = tmp_path / "advice"
    flags = [flag for flag in TINY_MLM if flag not in ("--model_size", "L2-H32")]
    command = [sys.executable, str(REPO / "recipes" / "advise.py"), "--model_sizes", "L2-H32,L2-H64"]
    command += [*flags, "--train_file", str(corpus), "--time_budget", "40s", "--output_dir", str(out)]
    command += ["--warmup_steps", "0", "--warmup_ratio", "0"]  # every logged loss fits the curve, on any machine
    # the default method: probes and branches run; a tiny model this close to the unigram line usually gets no
    # forecast, which the advice says, naming the size the probes measured ahead instead; else it holds the rungs
    branched = [item if item != str(out) else str(tmp_path / "branched") for item in command]
    staged = subprocess.run(branched, capture_output=True, text=True, timeout=600)
    assert staged.returncode == 0, staged.stderr[-2000:]
    assert (tmp_path / "branched" / "branches" / "L2-H32" / "ladder.json").is_file()
    advice = json.loads((tmp_path / "branched" / "advice.json").read_text())
    assert all(row["ladder"] for row in advice["forecasts"].values())
    if advice["basis"] == "measured":
        assert advice["no_forecast"].startswith("no forecast for 40s") and not advice["clear"]
        assert advice["recommended_size"] == min(advice["measured"]["losses"], key=advice["measured"]["losses"].get)
        assert "not a forecast" in (tmp_path / "branched" / "advice.md").read_text()
        assert advice["no_forecast"] in staged.stderr  # the log says it too
    else:
        assert advice["basis"] == "forecast" and advice["forecasts"][advice["recommended_size"]]["forecast_loss"]
    command += ["--method", "curve"]  # the earlier method forecasts from any probe: the rest of the flow
    done = subprocess.run([*command, "--continue_winner", "true"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    advice = json.loads((out / "advice.json").read_text())
    winner = advice["recommended_size"]
    assert advice["probe_s"] == pytest.approx(4.0) and set(advice["forecasts"]) == {"L2-H32", "L2-H64"}
    for size in ("L2-H32", "L2-H64"):
        row = advice["forecasts"][size]
        assert row["forecast_low"] <= row["forecast_loss"] <= row["forecast_high"]
        record = json.loads((out / "probes" / size / "run_summary.json").read_text())
        if size == winner:  # continued from its probe to the deadline
            assert record["stop_reason"] == "time_budget" and record["resumed_from"] is not None
            assert abs(record["train_s"] - 40.0) < 2.0
        else:
            assert record["stop_reason"] == "stop_after" and abs(record["train_s"] - 4.0) < 1.0
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)  # probes are reused, not rerun
    assert again.returncode == 0 and "reusing the probe" in again.stderr


def test_step_time_is_the_later_half_of_the_probe_not_its_slow_start():
    losses = [(10, 5.0, 7.0), (20, 7.0, 6.9), (30, 8.0, 6.8), (40, 9.0, 6.7)]  # 0.5 s, then 0.2, then 0.1 s a step
    probe = Probe(size="s", steps=50, train_s=10.0, budget_s=100.0, probe_s=10.0, losses=losses)
    assert probe.step_seconds() == pytest.approx((10.0 - 7.0) / (50 - 20))
    assert probe.steps_at(100.0) == pytest.approx(50 + 90.0 / 0.1)


def test_the_task_is_read_before_the_flags_and_names_the_recipe_that_continues():
    from hf_tbc.errors import UsageError
    from hf_tbc.tasks.registry import advised_task

    assert advised_task(["--time_budget", "1m"]).name == "mlm"
    translation = advised_task(["--task", "translation", "--time_budget", "1m"])
    assert translation.name == "translation" and advised_task(["--task=translation"]) is translation
    assert translation.arguments[0].__name__ == "TranslationModelArguments"
    with pytest.raises(UsageError, match="--task vision: the advisor compares sizes for mlm or translation"):
        advised_task(["--task", "vision"])
    argv = ["--task", "translation", "--model_sizes", "E1-D1-H64,E2-D2-H64", "--time_budget", "1m"]
    command = continue_command(argv, "out", "E2-D2-H64", "study/translate", translation.recipe)
    assert command == (
        "accelerate launch recipes/run_translation.py --time_budget 1m --model_size E2-D2-H64 --output_dir "
        "study/translate/E2-D2-H64 --resume_from_checkpoint true"
    )


def test_the_outcome_table_scores_each_forecast_against_the_run():
    from hf_tbc.advise.outcome import forecast_lines, outcome_of_forecasts

    def forecast(loss, low, high):
        return {"forecast_loss": loss, "forecast_low": low, "forecast_high": high, "probe_steps": 100, "support": "x"}

    advice = {
        "recommended_size": "small",
        "clear": False,
        "overlapping": ["large"],
        "probe_s": 60.0,
        "time_budget_s": 600.0,
        "forecasts": {"small": forecast(6.0, 5.8, 6.6), "large": forecast(6.3, 6.1, 6.7)},
        "crossovers": [],
    }
    rows = outcome_of_forecasts(advice, {"small": 5.6, "large": 6.2})
    assert [(row["size"], round(row["error"], 3), row["covered"]) for row in rows] == [
        ("small", -0.4, False),
        ("large", -0.1, True),
    ]
    lines = forecast_lines(advice, {"small": 5.6, "large": None}, "small")
    assert "recommended **small**: right (its interval overlapped large's)." in lines[0]
    assert "| small | 100 | 6.000 [5.800, 6.600] | x | 5.600 | -0.400 | **no** |" in lines
    assert "| large | 100 | 6.300 [6.100, 6.700] | x | not run |  |  |" in lines
    assert lines[-1] == "Median |measured − forecast| 0.400 nat; the interval held the measured loss for 0 of 1 sizes."


@pytest.mark.parametrize(
    "cmdline, expected",
    [
        (
            [
                "/venv/bin/python",
                "/venv/bin/accelerate",
                "launch",
                "--cpu",
                "--num_processes",
                "1",
                "recipes/advise.py",
            ],
            ["accelerate", "launch", "--cpu", "--num_processes", "1"],
        ),
        (
            ["/usr/bin/python3.11", "-m", "accelerate.commands.launch", "--multi_gpu", "/repo/recipes/advise.py", "-x"],
            ["accelerate", "launch", "--multi_gpu"],
        ),
        (["python", "/venv/bin/hf-tbc-launch", "--cpu", "recipes/advise.py"], ["hf-tbc-launch", "--cpu"]),
        (["python3", "-m", "hf_tbc.launch", "--cpu", "recipes/advise.py"], ["hf-tbc-launch", "--cpu"]),
        (
            ["/venv/bin/python", "/venv/bin/torchrun", "--nproc_per_node", "2", "advise.py"],
            ["torchrun", "--nproc_per_node", "2"],
        ),
        (["bash", "run.sh"], None),  # no launcher
        (["/venv/bin/python", "/venv/bin/accelerate", "launch", "other.py"], None),  # another script
    ],
)
def test_the_launcher_is_read_from_its_command_line_as_the_user_typed_it(cmdline, expected):
    from hf_tbc.launch import launcher_prefix

    assert launcher_prefix(cmdline, "/repo/recipes/advise.py") == expected


def test_the_continue_command_keeps_the_launcher_flags_the_advisor_ran_under():
    argv = ["--task", "translation", "--model_sizes", "E1-D1-H64,E2-D2-H64", "--time_budget", "1m"]
    launcher = ["accelerate", "launch", "--cpu", "--num_processes", "1"]
    command = continue_command(argv, "out", "E2-D2-H64", None, "run_translation.py", launcher)
    assert command.startswith("accelerate launch --cpu --num_processes 1 recipes/run_translation.py --time_budget 1m")


def test_the_task_is_read_from_a_flags_file_too(tmp_path):
    from hf_tbc.tasks.registry import advised_task

    flags = tmp_path / "advice.yaml"
    flags.write_text("task: translation\nmodel_sizes: E1-D1-H64,E2-D2-H64\ntime_budget: 1m\n")
    assert advised_task([str(flags)]).name == "translation"


def test_a_preempted_continuation_of_the_winner_exits_as_a_preempted_run(tmp_path, monkeypatch):
    """A scheduler requeues only a run that exits 143: the advisor whose winner's continuation was preempted must."""
    import dataclasses

    from hf_tbc.advise import run
    from hf_tbc.budget import PREEMPTED_EXIT_CODE
    from hf_tbc.cli import run_recipe
    from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
    from hf_tbc.tasks.registry import TASKS

    def train(model_args, data_args, training_args):
        return {"stop_reason": "preempted", "checkpoint": "ckpt", "resume": "rerun to resume"}

    task = dataclasses.replace(TASKS["mlm"], train=train, recipe="x", loss="y")
    monkeypatch.setattr(run, "run_probes", lambda *args, **kwargs: [])
    monkeypatch.setattr(run, "Forecaster", lambda probes: None)
    monkeypatch.setattr(
        run, "advice_record", lambda *args: {"recommended_size": "L2-H64", "clear": True, "forecasts": {}}
    )
    monkeypatch.setattr(run, "write_advice", lambda *args: None)
    arguments = (
        ModelArguments(),
        DataTrainingArguments(),
        PretrainingArguments(output_dir=str(tmp_path), time_budget="1m"),
        AdviceArguments(model_sizes="L2-H32,L2-H64", continue_winner=True),
    )
    with pytest.raises(SystemExit) as stopped:
        run_recipe(lambda: run.advise(task, *arguments))
    assert stopped.value.code == PREEMPTED_EXIT_CODE


def test_probes_are_reused_only_when_every_setting_that_shapes_them_is_the_same(tmp_path):
    import dataclasses

    from hf_tbc.advise.probing import run_probes
    from hf_tbc.errors import UsageError
    from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments

    trained = []

    def train(model_args, data_args, training_args):  # a probe's records, as the recipe writes them
        trained.append(model_args.model_size)
        folder = Path(training_args.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"step": step, "train_s": step / 10, "loss": 7.0 - step / 100, "lr": 1e-3} for step in range(1, 31)]
        (folder / "curve.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        record = {"stop_reason": "stop_after", "steps": 30, "train_s": 3.0, "time_budget_s": 30.0, "stop_after_s": 3.0}
        (folder / "run_summary.json").write_text(json.dumps(record))
        return record

    model, data = ModelArguments(), DataTrainingArguments(train_file="corpus.txt")
    training = PretrainingArguments(output_dir=str(tmp_path), time_budget="30s", per_device_train_batch_size=16)
    sizes = ["L2-H32", "L2-H64"]
    assert len(run_probes(sizes, 3.0, model, data, training, train)) == 2 and trained == sizes
    assert len(run_probes(sizes, 3.0, model, data, training, train)) == 2 and trained == sizes  # reused
    larger_batch = dataclasses.replace(training, per_device_train_batch_size=32)
    with pytest.raises(UsageError, match=r"ran with other settings \(--per_device_train_batch_size 16 -> 32\)"):
        run_probes(sizes, 3.0, model, data, larger_batch, train)
    other_data = DataTrainingArguments(train_file="other.txt")
    with pytest.raises(UsageError, match="--train_file 'corpus.txt' -> 'other.txt'.*--overwrite_output_dir"):
        run_probes(sizes, 3.0, model, other_data, training, train)
    again = dataclasses.replace(larger_batch, overwrite_output_dir=True)
    assert len(run_probes(sizes, 3.0, model, data, again, train)) == 2 and trained == sizes * 2  # probed again
