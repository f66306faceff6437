"""recipes/run_mlm.py run the way a user runs it: a subprocess under `accelerate launch`."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers import AutoModelForMaskedLM, AutoTokenizer

from hf_tbc.budget.curves import read_curve
from hf_tbc.budget.runs import last_complete_checkpoint
from tests.conftest import REPO, sigterm_after_first_log
from tests.conftest import TINY_MLM as TINY

RECIPE = str(REPO / "recipes" / "run_mlm.py")


def accelerate_launch(*args: str, processes: int = 1) -> list[str]:
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    if processes > 1:  # on a machine without GPUs this starts `processes` gloo processes (--cpu would start one)
        launcher += ["--multi_gpu", "--num_processes", str(processes), "--main_process_port", "0"]
    else:
        launcher += ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return launcher + [RECIPE, *args]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, isolated_cache):
    """A few thousand lines of real English made from this Python's docs, written as a training file."""
    from hf_tbc.tasks.mlm.corpus import default_corpus

    path = tmp_path_factory.mktemp("corpus") / "train.txt"
    path.write_text("\n".join(default_corpus().read_text().splitlines()[:3000]) + "\n")
    return str(path)


def summary(output_dir) -> dict:
    return json.loads((Path(output_dir) / "run_summary.json").read_text())


def assert_stopped_near_the_deadline(output_dir, budget: float) -> None:
    """The last step ends within one step of the deadline, on either side, and the summary records by how much."""
    rows = [row for row in read_curve(output_dir) if row["loss"] is not None]  # logging_steps=1: one row per step
    slowest = max(b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows[-17:], rows[-16:]))
    assert rows[-2]["elapsed_s"] < budget + 5e-4  # curve rounds to ms
    assert abs(rows[-1]["elapsed_s"] - budget) <= slowest + 5e-4
    record = summary(output_dir)
    assert record["train_s"] == pytest.approx(rows[-1]["elapsed_s"], abs=0.01)
    assert record["deadline_overshoot_s"] == pytest.approx(rows[-1]["elapsed_s"] - budget, abs=0.01)


@pytest.mark.slow
def test_budgeted_run_stops_after_the_budget_and_loads_back(tmp_path, corpus):
    out = tmp_path / "run"
    done = subprocess.run(
        accelerate_launch(*TINY, "--train_file", corpus, "--time_budget", "12s", "--output_dir", str(out)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert_stopped_near_the_deadline(out, 12.0)
    record = summary(out)
    assert record["stop_reason"] == "time_budget" and record["world_size"] == 1 and record["steps"] > 5
    assert 0 < record["unigram_loss"] < 10 and record["below_unigram"] == pytest.approx(
        record["unigram_loss"] - record["final_eval_loss"], abs=1e-3
    )
    # whole 32-token blocks, 8 per step, except the last batch of each pass over the data
    assert record["tokens"] % 32 == 0 and 0 <= record["steps"] * 8 * 32 - record["tokens"] < 8 * 32 * 10
    assert record["total_s"] > record["train_s"]  # evaluations and the final save took time outside the budget
    assert (out / "loss_vs_time.png").stat().st_size > 10_000
    model = AutoModelForMaskedLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 2 and len(tokenizer) == 600
    # the short-budget recipe: a stock pre-LayerNorm RoBERTa trained without dropout, head on masked positions only
    assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM" and model.config.hidden_dropout_prob == 0.0
    assert record["sparse_prediction"] and record["adam_betas"] == [0.9, 0.98] and record["max_grad_norm"] == 0.5
    assert record["mlm_probability"] == 0.15 and record["eval_mlm_probability"] == 0.15
    assert record["position_init"] == "sinusoidal"
    evaluations = [row for row in read_curve(out) if row["eval_loss"] is not None]
    assert len(evaluations) >= 5 and evaluations[-1]["eval_loss"] == record["final_eval_loss"]
    assert evaluations[-1]["eval_loss"] < evaluations[0]["eval_loss"]  # it learned something


def test_a_streamed_corpus_trains_past_its_end_and_evaluates_on_its_first_texts(tmp_path, corpus):
    small = tmp_path / "small.txt"  # one pass is a couple of dozen steps: the stream must start over
    small.write_text("\n".join(Path(corpus).read_text().splitlines()[:40]) + "\n")
    out = tmp_path / "streamed"
    arguments = [*TINY, "--train_file", str(small), "--streaming", "true", "--max_eval_samples", "20"]
    done = subprocess.run(
        accelerate_launch(*arguments, "--time_budget", "5s", "--output_dir", str(out)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = summary(out)
    blocks_per_pass = sum(len(line) for line in small.read_text().splitlines()) // 32  # fewer than 1 token a char
    assert record["streaming"] is True and record["stop_reason"] == "time_budget"
    assert record["steps"] * 8 > blocks_per_pass and record["tokens"] == record["steps"] * 8 * 32
    assert record["final_eval_loss"] is not None and record["unigram_loss"] is not None
    assert AutoModelForMaskedLM.from_pretrained(out).config.hidden_size == 32


@pytest.mark.slow
def test_a_stream_of_a_small_file_trains_with_a_share_held_out(tmp_path, english_lines):
    corpus = tmp_path / "corpus.txt"  # 20,000 sentences, ~1 MB: less than the 2 MB a stream's validation asks
    corpus.write_text("\n".join(line[:60] for line in (english_lines * 50)[:20_000]) + "\n")
    assert corpus.stat().st_size < 1_300_000
    out = tmp_path / "small-stream"
    done = subprocess.run(
        accelerate_launch(
            *"--model_size L2-H32 --vocab_size 600 --disable_tqdm true --dataloader_num_workers 0".split(),
            *["--train_file", str(corpus), "--streaming", "true", "--time_budget", "5s", "--output_dir", str(out)],
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "held out for validation (--validation_split_percentage)" in done.stderr
    record = summary(out)
    assert record["streaming"] is True and record["stop_reason"] == "time_budget" and record["steps"] > 0
    assert record["final_eval_loss"] is not None


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--time_budget", "ten minutes"], "time budget 'ten minutes' is not a duration"),
        (["--time_budget", "0"], "must be positive"),
        (["--model_size", "L5-H200"], "model size 'L5-H200': needs at least one layer and a hidden size"),
        (["--config_overrides", "num_attention_heads=5"], "not divisible by num_attention_heads 5"),
        (["--train_file", "/no/such/file.txt"], "/no/such/file.txt does not exist"),
        (["--train_file", "EMPTY"], "is empty"),
        (["--train_file", "TABLE", "--text_column", "review"], "text column 'review' is not in"),
        (["--block_size", "600"], "--block_size 600 exceeds the model's 512 positions"),
        (["--eval_mlm_probability", "0"], "--eval_mlm_probability 0.0 must be in (0, 1)"),
        (["--streaming", "true"], "--streaming reads a --dataset_name or a --train_file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, arguments, message):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "table.csv").write_text("sentence,label\nsome words here,1\n")
    arguments = [
        {"EMPTY": str(tmp_path / "empty.txt"), "TABLE": str(tmp_path / "table.csv")}.get(a, a) for a in arguments
    ]
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, RECIPE, "--time_budget", "5s", "--output_dir", str(out), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_an_output_dir_holding_another_run_is_left_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "curve.jsonl").write_text('{"step": 1}\n')
    done = subprocess.run(
        [sys.executable, RECIPE, "--time_budget", "5s", "--output_dir", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--overwrite_output_dir" in done.stderr.splitlines()[-1]
    assert (out / "curve.jsonl").read_text() == '{"step": 1}\n' and len(list(out.iterdir())) == 1


@pytest.mark.slow
def test_two_cpu_processes_train_one_ddp_model_and_stop_together(tmp_path):
    out = tmp_path / "ddp"  # the built-in corpus, as in the README's main command
    command = accelerate_launch(
        "--model_size",
        "L2-H32",
        "--time_budget",
        "10s",
        "--output_dir",
        str(out),
        "--disable_tqdm",
        "true",
        "--per_device_train_batch_size",
        "8",
        "--position_init",
        "random",
        processes=2,
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = summary(out)
    assert record["world_size"] == 2 and record["ddp"] and record["parallel_mode"] == "distributed"
    assert record["position_init"] == "random"
    assert len(record["stop_step_per_rank"]) == 2 and len(set(record["stop_step_per_rank"])) == 1
    assert record["tokens"] == record["steps"] * 2 * 8 * 128  # both ranks' tokens are counted
    assert AutoModelForMaskedLM.from_pretrained(out).config.hidden_size == 32
    # a fresh model's loss is about ln(vocabulary): the first logged loss is that, not the world size times it
    first = next(row["loss"] for row in read_curve(out) if row["loss"] is not None)
    assert abs(first - math.log(len(AutoTokenizer.from_pretrained(out)))) < 0.5
    assert record["final_eval_loss"] < first


@pytest.mark.slow
def test_two_processes_train_on_one_stream_and_stop_together(tmp_path, corpus):
    out = tmp_path / "ddp-stream"
    arguments = [*TINY, "--train_file", corpus, "--streaming", "true", "--max_eval_samples", "20"]
    done = subprocess.run(
        accelerate_launch(*arguments, "--time_budget", "6s", "--output_dir", str(out), processes=2),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = summary(out)
    assert record["world_size"] == 2 and record["streaming"] and len(set(record["stop_step_per_rank"])) == 1
    assert record["tokens"] == record["steps"] * 2 * 8 * 32 and record["final_eval_loss"] is not None


def _wait_for_checkpoint(out: Path, process: subprocess.Popen, timeout: float = 240) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sorted(out.glob("checkpoint-*/trainer_state.json"))
        if done:
            return done[0].parent
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_killed_run_resumes_for_the_remaining_budget_only(tmp_path, corpus):
    out, budget = tmp_path / "run", 16.0
    arguments = [*TINY, "--train_file", corpus, "--time_budget", "16s", "--output_dir", str(out), "--save_every", "4s"]
    process = subprocess.Popen(
        accelerate_launch(*arguments),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for_checkpoint(out, process)
    time.sleep(3)  # train on past the checkpoint: that work is lost with the kill
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    checkpoint = Path(last_complete_checkpoint(str(out)))
    spent = json.loads((checkpoint / "trainer_state.json").read_text())["stateful_callbacks"]["WallClockBudgetCallback"]
    spent = spent["attributes"]["train_seconds_before"]
    assert 0 < spent < budget

    done = subprocess.run(
        accelerate_launch(*arguments, "--resume_from_checkpoint", "true"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = summary(out)
    assert record["resumed_from"] == str(checkpoint) and record["stop_reason"] == "time_budget"
    assert_stopped_near_the_deadline(out, budget)
    resumed_rows = [
        row for row in read_curve(out) if row["loss"] is not None and row["step"] > int(checkpoint.name[11:])
    ]
    assert resumed_rows[0]["elapsed_s"] > spent  # the resumed run's clock starts where the checkpoint's stopped


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint(tmp_path, corpus):
    out = tmp_path / "run"
    arguments = [*TINY, "--train_file", corpus, "--time_budget", "10m", "--output_dir", str(out)]
    returncode, stderr = sigterm_after_first_log([sys.executable, RECIPE, *arguments], out)
    assert returncode == 143, stderr[-3000:]  # "stopped from outside: requeue me"
    assert "Preempted at step" in stderr and stderr.strip().splitlines()[-1].startswith("preempted: checkpoint")
    checkpoint = sorted(out.glob("checkpoint-*"))
    assert len(checkpoint) == 1 and (checkpoint[0] / "trainer_state.json").exists()
    record = summary(out)  # the run is recorded as preempted, and claims no final model
    assert record["stop_reason"] == "preempted" and record["model_saved"] is False
    assert record["checkpoint"] == str(checkpoint[0]) and not (out / "model.safetensors").exists()
    resumed = subprocess.run(
        [sys.executable, RECIPE, *arguments, "--time_budget", "4s", "--resume_from_checkpoint", "true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert summary(out)["resumed_from"] == str(checkpoint[0])
    assert summary(out)["stop_reason"] == "time_budget" and summary(out)["model_saved"] is True


@pytest.mark.slow
def test_a_probe_is_the_start_of_the_full_run(tmp_path, corpus):
    """--stop_after 4s of a 16 s budget: exit 0 with a checkpoint and no model, on the 16 s schedule; finetuning
    refuses the probe; the same command without --stop_after resumes it and trains to 16 s in all."""
    out, budget = tmp_path / "run", 16.0
    arguments = [*TINY, "--train_file", corpus, "--time_budget", "16s", "--warmup_ratio", "0.05"]
    arguments += ["--output_dir", str(out)]
    probe = subprocess.run(
        [sys.executable, RECIPE, *arguments, "--stop_after", "4s"], capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    record = summary(out)
    assert record["stop_reason"] == "stop_after" and record["model_saved"] is False
    assert record["stop_after_s"] == 4.0 and record["last_eval_loss"] is not None
    checkpoint = record["checkpoint"]
    assert not (out / "model.safetensors").exists() and Path(checkpoint).is_dir()
    assert abs(record["train_s"] - 4.0) < 1.0
    last = [row for row in read_curve(out) if row["lr"] is not None][-1]
    assert last["lr"] == pytest.approx(1e-3, rel=0.1)  # warmup_stable_decay: the peak, held until the last fifth

    refused = subprocess.run(
        [
            sys.executable,
            str(REPO / "recipes" / "run_classification.py"),
            "--model_name_or_path",
            str(out),
            "--train_file",
            corpus,
            "--output_dir",
            str(tmp_path / "tuned"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2 and "stopped early by --stop_after" in refused.stderr

    resumed = subprocess.run(
        [sys.executable, RECIPE, *arguments, "--resume_from_checkpoint", "true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = summary(out)
    assert record["stop_reason"] == "time_budget" and record["model_saved"] is True
    assert record["resumed_from"] == checkpoint
    assert_stopped_near_the_deadline(out, budget)
