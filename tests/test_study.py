"""recipes/study.py end to end on the tiny config (the advisor first, then every stage), killed once and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hf_tbc.study.stages import StudyConfig, as_flags
from tests.conftest import REPO
from tests.test_classification import write_table

STUDY = str(REPO / "recipes" / "study.py")
TINY = str(REPO / "recipes" / "configs" / "tiny.yaml")


@pytest.fixture
def study_data(tmp_path):
    from hf_tbc.tasks.mlm.corpus import default_corpus

    lines = default_corpus().read_text().splitlines()[:1500]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "text.txt").write_text("\n".join(lines) + "\n")
    rows = [(line, int("the " in line.lower()[:60])) for line in lines[:600]]  # a real, learnable signal
    write_table(folder / "train.csv", ["sentence", "label"], rows[:500])
    write_table(folder / "dev.csv", ["sentence", "label"], rows[500:])
    return folder


@pytest.mark.slow
def test_tiny_study_runs_end_to_end_and_resumes_after_preemption_and_a_kill(tmp_path, study_data):
    out = tmp_path / "study"
    record = out / "pretrain" / "L2-H32" / "run_summary.json"
    command = [sys.executable, STUDY, "--config", TINY, "--data_dir", str(study_data), "--output_dir", str(out)]

    def start_and_wait_for(condition):
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.monotonic() + 300
        while not condition():
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        return process

    # preempted while the advisor probes the first size, as a scheduler does it: SIGTERM to the study's process group
    process = start_and_wait_for(lambda: (out / "pretrain" / "L2-H32" / "curve.jsonl").exists())
    os.killpg(process.pid, signal.SIGTERM)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 143, stderr[-3000:]
    assert "preempted: advise was preempted" in stderr
    preempted = json.loads(record.read_text())
    assert preempted["stop_reason"] == "preempted" and preempted["model_saved"] is False
    assert not (out / "advice" / "advice.json").exists() and not (out / "finetune").exists()

    # rerun: the probe resumes from its checkpoint, the advice is written, and the size's run continues from its
    # probe; killed outright once that run has finished
    def finished():
        return record.exists() and json.loads(record.read_text()).get("stop_reason") == "time_budget"

    process = start_and_wait_for(finished)
    os.killpg(process.pid, signal.SIGKILL)  # killed in the middle of the study
    process.wait()
    probe = json.loads((out / "pretrain" / "L2-H32" / "probe_summary.json").read_text())
    assert probe["stop_reason"] == "stop_after" and probe["resumed_from"] == preempted["checkpoint"]
    assert json.loads(record.read_text())["resumed_from"] == probe["checkpoint"]
    finished_before = record.stat().st_mtime_ns

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "skipped (complete): advise, pretrain L2-H32" in resumed.stdout
    assert record.stat().st_mtime_ns == finished_before
    for figure in (
        "loss_vs_time.png",
        "loss_vs_steps.png",
        "accuracy_vs_size.png",
        "accuracy_vs_nonzero_parameters.png",
        "accuracy_vs_latency.png",
        "accuracy_drop_vs_sparsity.png",
        "forecast_vs_outcome.png",
    ):
        assert (out / figure).stat().st_size > 10_000, figure

    report = (out / "report.md").read_text()
    advice = json.loads((out / "advice" / "advice.json").read_text())
    for size in ("L2-H32", "L2-H64"):
        summary = json.loads((out / "pretrain" / size / "run_summary.json").read_text())
        forecast = advice["forecasts"][size]
        assert summary["resumed_from"] == forecast["checkpoint"]  # each run is its probe continued
        assert (
            f"| {size} | {forecast['probe_steps']:,} | {forecast['forecast_loss']:.3f} "
            f"[{forecast['forecast_low']:.3f}, {forecast['forecast_high']:.3f}] | {forecast['support']} | "
            f"{summary['final_eval_loss']:.3f} | {summary['final_eval_loss'] - forecast['forecast_loss']:+.3f} |"
        ) in report
        tuned = json.loads((out / "finetune" / size / "eval_results.json").read_text())
        assert f"| {size} | {summary['parameters']:,} | {summary['steps']:,} | {summary['tokens']:,} |" in report
        below = f"{summary['unigram_loss'] - summary['final_eval_loss']:+.3f}"
        assert (
            f"| {summary['final_eval_loss']:.4f} | {summary['unigram_loss']} | {below} | {tuned['accuracy']:.4f} "
            f"| {tuned['majority_accuracy']:.4f} |"
        ) in report
        for line in (out / "compress" / size / "compression.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert (
                f"| {size} | {row['variant']} | {row.get('pruning_method') or '–'} | {row['sparsity']:.3f} |" in report
            )
            if row["variant"] == "dense-fp32":  # the same model on the same data, measured by two recipes
                assert row["accuracy"] == pytest.approx(tuned["accuracy"], abs=0.011)
    assert any(row.startswith("| L2-H64 | structured50-onnx-int8 | structured |") for row in report.splitlines())
    best = min(
        ("L2-H32", "L2-H64"),
        key=lambda s: json.loads((out / "pretrain" / s / "run_summary.json").read_text())["final_eval_loss"],
    )
    assert f"**{best}** reached the lowest validation MLM loss" in report
    right = "(right)." if advice["recommended_size"] == best else f"(wrong: {best} won)."
    assert f"had recommended {advice['recommended_size']} {right}" in report
    for question in ("## (a) Which size wins on wall-clock", "## (b) Are larger models", "## (c) At equal size"):
        assert question in report
    assert report.split(").", 1)[0].count(best) == 1  # the best size is named once, the others after it
    release = json.loads((out / "release" / "release.json").read_text())
    assert release and all(entry["status"] == "written" for entry in release)
    assert "## Budget plan" in report and "study-test/tbc-" in report

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "ran: nothing" in again.stdout


def test_config_errors_and_flags(tmp_path):
    with pytest.raises(ValueError, match="uses {data_dir}"):
        StudyConfig.from_yaml(TINY)
    config = StudyConfig.from_yaml(TINY, data_dir="/data", output_dir=str(tmp_path))
    assert config.section("pretraining")["train_file"] == "/data/text.txt" and config.sizes == ["L2-H32", "L2-H64"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\noutput_dir: o\nsizes: [L9-H1]\npretraining: {time_budget: 1m}\nfinetuning: {}\ncompression: {}\n"
    )
    with pytest.raises(ValueError, match="model size 'L9-H1': needs at least one layer"):
        StudyConfig.from_yaml(str(bad))
    bad.write_text("name: x\noutput_dir: o\nsizes: [L2-H32]\npretraining: {}\nfinetuning: {}\ncompression: {}\n")
    with pytest.raises(ValueError, match="pretraining needs a time_budget"):
        StudyConfig.from_yaml(str(bad))
    with pytest.raises(ValueError, match="does not exist"):
        StudyConfig.from_yaml(str(tmp_path / "nope.yaml"))
    assert as_flags({"a": 1, "b": True, "c": [1, 2], "d": None}) == ["--a", "1", "--b", "true", "--c", "1", "2"]


def test_a_preempted_stage_is_not_complete_and_is_resumed(tmp_path):
    import json

    from hf_tbc.budget.runs import preempted_record
    from hf_tbc.study.stages import stage_complete

    folder = tmp_path / "pretrain" / "L2-H32"
    (folder / "checkpoint-7").mkdir(parents=True)
    (folder / "checkpoint-7" / "trainer_state.json").write_text("{}")
    (folder / "run_summary.json").write_text(json.dumps({"stop_reason": "preempted", "model_saved": False, "steps": 7}))
    assert preempted_record(folder) is not None and not stage_complete("pretrain", folder)
    (folder / "run_summary.json").write_text(json.dumps({"stop_reason": "time_budget", "model_saved": True}))
    assert stage_complete("pretrain", folder) and preempted_record(folder) is None


def test_a_preempted_run_cannot_be_finetuned(tmp_path):
    import json

    from hf_tbc.errors import UsageError
    from hf_tbc.tasks.model_config import load_model_config

    (tmp_path / "run_summary.json").write_text(json.dumps({"stop_reason": "preempted", "steps": 7}))
    with pytest.raises(UsageError, match="preempted at step 7 with no final model: resume it"):
        load_model_config(str(tmp_path))
    with pytest.raises(UsageError, match="no such folder, and no Hub model"):
        load_model_config(str(tmp_path / "missing"))


def test_the_report_selects_as_the_release_does():
    from hf_tbc.tasks.mlm.findings import selection

    assert selection({"max_size_mb": 16}) == ("size", 16.0)
    assert selection({"select_by": "latency", "limit": 45}) == ("latency", 45.0)
    assert selection({}) == ("latency", None)


def test_the_advisor_section_and_a_probe_is_not_a_finished_pretraining(tmp_path):
    from hf_tbc.study.stages import stage_complete

    config = StudyConfig.from_yaml(TINY, data_dir="/data", output_dir=str(tmp_path))
    assert config.advisor == {"probe_budget": "3s", "method": "curve"}
    command = config.study_task.advice(config, ["accelerate", "launch"])[2]
    assert command[command.index("--model_sizes") + 1] == "L2-H32,L2-H64"
    assert command[command.index("--probes_dir") + 1] == str(tmp_path / "pretrain")  # probes start each size's run
    assert command[-4:] == ["--probe_budget", "3s", "--method", "curve"] and "--time_budget" in command
    tiny = (REPO / "recipes" / "configs" / "tiny.yaml").read_text()
    tiny = "\n".join(line for line in tiny.splitlines() if not line.startswith("  method: curve"))
    path = tmp_path / "variant.yaml"
    for section, expected in (("advisor: false", None), ("advisor: true", {})):
        path.write_text(tiny.replace("advisor:\n  probe_budget: 3s", section))
        assert StudyConfig.from_yaml(str(path), data_dir="/d").advisor == expected
    for section, error in (
        ("model_sizes: x", "advisor has unknown keys \\['model_sizes'\\]: it takes probe_budget"),
        ("probe_budget: soon", "probe_budget"),
    ):
        path.write_text(tiny.replace("probe_budget: 3s", section))
        with pytest.raises(ValueError, match=error):
            StudyConfig.from_yaml(str(path), data_dir="/d")

    folder = tmp_path / "pretrain" / "L2-H32"
    folder.mkdir(parents=True)
    (folder / "run_summary.json").write_text(json.dumps({"stop_reason": "stop_after", "model_saved": False}))
    assert not stage_complete("pretrain", folder)  # the study continues the probe to the deadline


def test_robustness_is_each_size_against_its_own_dense_model():
    from hf_tbc.tasks.mlm.findings import robustness, robustness_section

    def row(variant, accuracy, sparsity=0.0, method="none"):
        pruning = "structured" if sparsity else None
        return {
            "variant": variant,
            "accuracy": accuracy,
            "target_sparsity": sparsity,
            "pruning_method": pruning,
            "method": method,
        }

    compression = {
        "small": [
            row("dense-fp32", 0.80),
            row("structured50-fp32", 0.70, 0.5),
            row("dense-onnx-int8", 0.79, 0, "onnx-int8"),
        ],
        "large": [
            row("dense-fp32", 0.60),
            row("structured50-fp32", 0.58, 0.5),
            row("dense-onnx-int8", 0.60, 0, "onnx-int8"),
        ],
    }
    drops = robustness(compression)
    assert drops["small"] == pytest.approx({"structured50-fp32": -0.10, "dense-onnx-int8": -0.01})
    assert drops["large"] == pytest.approx({"structured50-fp32": -0.02, "dense-onnx-int8": 0.0})
    lines = robustness_section(compression)
    assert "| variant | small (dense 0.8000) | large (dense 0.6000) |" in lines
    assert "| structured50-fp32 | -0.1000 | **-0.0200** |" in lines
    assert any(
        line.startswith("Smallest drop, of 2 variants: small 0, large 2; mean change small -0.0550") for line in lines
    )


def test_skip_plan_starts_the_stages_without_probing_and_plan_only_refuses_it(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("study_recipe", STUDY)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    from hf_tbc.tasks import registry

    started = []
    monkeypatch.setattr(recipe, "run_stages", lambda config: started.append(config) or {"ran": [], "skipped": []})
    monkeypatch.setattr(StudyConfig, "study_task", property(lambda self: _NoReport(registry.TASKS["mlm"])))
    arguments = ["study.py", "--config", TINY, "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "study")]
    monkeypatch.setattr(sys, "argv", [*arguments, "--skip_plan", "true"])
    recipe.main()
    assert len(started) == 1 and "Budget plan" not in capsys.readouterr().out
    done = subprocess.run(
        [sys.executable, STUDY, *arguments[1:], "--skip_plan", "true", "--plan_only", "true"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "--skip_plan" in errors[0]


class _NoReport:
    """A study task that fails if its plan probes, and whose report is not written (the stages did not run)."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def plan(self, config):
        pytest.fail("the plan probed step times")

    def write_report(self, config, rows):
        assert rows is None
        return "report.md"
