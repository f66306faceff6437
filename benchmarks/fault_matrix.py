#!/usr/bin/env python
"""Fault matrix: the real recipes under the faults a cluster and a user inflict, with one table of outcomes.

    python benchmarks/fault_matrix.py                       # every section (about 25 minutes on 2 cores)
    python benchmarks/fault_matrix.py --sections bad_input,hub --ddp_runs 5

Sections, each a row or rows of the table:
- ddp: 2-process CPU DDP (`accelerate launch --multi_gpu --num_processes 2`) under a budget; held when the run exits
  0 within its timeout and both ranks stopped at the same step.
- sigkill: SIGKILL to the run's process group at a random moment after its first checkpoint, half of them while a
  checkpoint is being written; then `--resume_from_checkpoint true`. Held when the resume starts from the newest
  complete checkpoint (never the half-written one), its clock starts at that checkpoint's time, and training stops
  within one step of the budget across both runs.
- sigterm: SIGTERM to the process group during a training step, an evaluation and a checkpoint save. Held when the
  run exits 143 with a complete checkpoint and a run_summary.json that says preempted and claims no model, and the
  resumed run finishes its budget.
- bad_input: wrong flags, files, records and configs across all five recipes. Held when the run exits 2 with one
  `error:` line and no traceback, and leaves no output behind (an existing output folder is left untouched).
- hub: a release pushed to a local test Hub that fails (5xx, 429, a dropped connection before or after a commit, a
  concurrent commit). Held when what is reported pushed is exactly what the Hub holds.
- ddp_loss: the 2-process runs of `ddp` again, their recorded final validation loss against the saved model scored
  in one process on the same validation blocks; and one training step on a batch whose ranks hold different label
  counts (tests/ddp_probe.py), its logged loss, evaluated loss and gradient against one process on the whole batch.
- preflight: five-repo releases that cannot complete (an existing repo in third place without --overwrite, a
  read-only token, a namespace the user is not a member of, an invalid name in third place). Held when nothing is
  created or committed and the error is one line.
- midway: the connection drops for good after the second of five commits, then a rerun. Held when release.json
  says exactly which repos landed and the rerun pushes exactly the rest, with no second commit where one landed.
- leaks: every file of every repo pushed by a release of local-file runs (data in a folder of its own), read for the
  work folder, the data folder's name, the home folder and the host name. Held when none holds any.
- compress_rerun: compress.py rerun over a finished grid with --overwrite_output_dir, failing midway. Held when the
  old grid is there byte for byte and no staging folder is left.
- two_nodes: two nodes on one machine over loopback (`benchmarks/two_nodes.py`: one CPU process per node, each its
  own launcher, caches and temporary folder, the output folder shared): `--ddp_runs` budgeted runs, held when both
  exit 0 with one stop step and a fresh model's first loss; and `--term_runs` runs whose node 1 launcher gets SIGTERM,
  held when both nodes exit 143 with a complete checkpoint and the resume on both finishes the budget.
- launcher: SIGTERM to the launcher process alone (hf-tbc-launch with 1 and 2 processes, plain accelerate launch
  with 1). Held when the run leaves a resumable checkpoint and a preempted record, no process trains on, and
  hf-tbc-launch exits 143 (plain accelerate launch dies of the signal at once up to accelerate 1.15, 143 as a shell
  reports it, and from 1.16 forwards it and exits 143 itself).

A fault is injected into a run by starting it through this script (`--child PHASE`), which slows the phase down
and writes a marker when it begins, so the signal lands inside it; the recipe itself is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test Hub lives in tests/
RECIPES = REPO / "recipes"
DATA_FOLDER = "acme-client-data"
TINY = (
    "--model_size L2-H32 --vocab_size 500 --block_size 32 --per_device_train_batch_size 8 --logging_steps 1 "
    "--disable_tqdm true --dataloader_num_workers 0"
).split()


@dataclass
class Row:
    fault: str
    runs: int
    held: int
    detail: str


# -- the child: a recipe run with one phase slowed down and announced ---------------------------------------
def child(phase: str, marker: Path, recipe: str, arguments: list[str]) -> None:
    from transformers import Trainer

    def announce():
        if not marker.exists():
            marker.write_text(phase)

    if phase == "compress_fail":  # the second variant's measurement fails, as an out-of-memory would
        import hf_tbc.tasks.classification.compress as grid

        real_measure, calls = grid.measure_variant, []

        def failing_measure(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                announce()
                raise MemoryError("out of memory while measuring the second variant")
            return real_measure(*args, **kwargs)

        grid.measure_variant = failing_measure
    elif phase == "save":  # between the model file and trainer_state.json: a save in progress, half on disk
        real = Trainer._save_optimizer_and_scheduler

        def slow_save(self, output_dir):
            if self.state.global_step >= 3:
                announce()
                time.sleep(1.5)
            return real(self, output_dir)

        Trainer._save_optimizer_and_scheduler = slow_save
    elif phase == "eval":
        real_step = Trainer.prediction_step

        def slow_prediction(self, *args, **kwargs):
            if self.state.global_step >= 3:
                announce()
                time.sleep(0.1)
            return real_step(self, *args, **kwargs)

        Trainer.prediction_step = slow_prediction
    elif phase == "train":
        real_training_step = Trainer.training_step

        def announced_step(self, *args, **kwargs):
            if self.state.global_step >= 5:
                announce()
            return real_training_step(self, *args, **kwargs)

        Trainer.training_step = announced_step
    sys.argv = [recipe, *arguments]
    runpy.run_path(recipe, run_name="__main__")


# -- helpers -------------------------------------------------------------------------------------------------
def start(command: list[str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)


def wait_for(condition, process: subprocess.Popen, timeout: float = 240) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def command_lines() -> str:
    """Every live process's command line (read from /proc: ps cuts lines to the terminal's width)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(lines)


def summary(folder: Path) -> dict:
    return json.loads((folder / "run_summary.json").read_text())


def checkpoint_seconds(checkpoint: str) -> float:
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return state["stateful_callbacks"]["WallClockBudgetCallback"]["attributes"]["train_seconds_before"]


def step_times(folder: Path) -> list[float]:
    rows = [json.loads(line) for line in (folder / "curve.jsonl").read_text().splitlines() if line.strip()]
    times = sorted({row["elapsed_s"] for row in rows if row.get("loss") is not None})
    return [later - earlier for earlier, later in zip(times, times[1:])]


def build_fixtures(work: Path) -> dict:
    """Text, a tiny pretrained and finetuned model and a compression output, made by the recipes themselves."""
    from hf_tbc.tasks.mlm.corpus import default_corpus

    lines = default_corpus().read_text().splitlines()
    data = work / DATA_FOLDER  # a folder of its own, whose name a release must not publish
    data.mkdir()
    (data / "text.txt").write_text("\n".join(lines[:3000]) + "\n")
    rows = ["sentence\tlabel"] + [
        f"{line.replace(chr(9), ' ')}\t{int('the ' in line.lower()[:60])}" for line in lines[3000:3600]
    ]
    (data / "train.tsv").write_text("\n".join(rows[:501]) + "\n")
    (data / "dev.tsv").write_text("\n".join([rows[0], *rows[501:]]) + "\n")
    python = [sys.executable]
    steps = [
        [
            *python,
            str(RECIPES / "run_mlm.py"),
            *TINY,
            "--train_file",
            str(data / "text.txt"),
            "--time_budget",
            "4s",
            "--output_dir",
            str(work / "pretrained"),
        ],
        [
            *python,
            str(RECIPES / "run_classification.py"),
            "--model_name_or_path",
            str(work / "pretrained"),
            "--train_file",
            str(data / "train.tsv"),
            "--validation_file",
            str(data / "dev.tsv"),
            "--time_budget",
            "4s",
            "--max_seq_length",
            "64",
            "--disable_tqdm",
            "true",
            "--output_dir",
            str(work / "finetuned"),
        ],
        [
            *python,
            str(RECIPES / "compress.py"),
            "--model_name_or_path",
            str(work / "finetuned"),
            "--validation_file",
            str(data / "dev.tsv"),
            "--sparsities",
            "0,0.5",
            "--quantization",
            "none,onnx-int8,quanto-int8",
            "--latency_runs",
            "1",
            "--latency_batch_size",
            "4",
            "--output_dir",
            str(work / "compressed"),
        ],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"building the fixtures failed: {' '.join(command[:2])}\n{done.stderr[-3000:]}")
    return {
        "text": data / "text.txt",
        "train": data / "train.tsv",
        "dev": data / "dev.tsv",
        "data": data,
        "pretrained": work / "pretrained",
        "finetuned": work / "finetuned",
        "compressed": work / "compressed",
    }


# -- sections ------------------------------------------------------------------------------------------------
# two CPU processes under accelerate on a free port (runs beside other DDP runs do not collide)
TWO_PROCESSES = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
TWO_PROCESSES += ["--main_process_port", "0"]


def two_process_run(fixtures: dict, out: Path) -> list[str]:
    """A 6-second tiny run_mlm.py on two processes, into ``out``."""
    return [*TWO_PROCESSES, str(RECIPES / "run_mlm.py"), *TINY, "--train_file", str(fixtures["text"])] + [
        "--time_budget",
        "6s",
        "--output_dir",
        str(out),
    ]


def ddp_stop(work: Path, fixtures: dict, runs: int) -> list[Row]:
    held, stops = 0, []
    for index in range(runs):
        out = work / f"ddp-{index}"
        command = two_process_run(fixtures, out)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO)
        except subprocess.TimeoutExpired:
            continue  # a hang counts as a failure
        if done.returncode == 0:
            record = summary(out)
            ranks = record["stop_step_per_rank"]
            stops.append(ranks[0])
            held += int(record["world_size"] == 2 and record["ddp"] and len(set(ranks)) == 1)
    detail = f"stop steps {min(stops)}–{max(stops)}, each the same on both ranks" if stops else "no run finished"
    return [
        Row(
            "2-process CPU DDP, 6 s budget: both ranks stop at the same step, no hang (timeout 240 s)",
            runs,
            held,
            detail,
        )
    ]


def _resumed_right(out: Path, expected: str, half_written: list[str], budget: float) -> tuple[bool, str]:
    """Whether a killed run resumed from ``expected`` (never a half-written folder), went on from its clock, and
    stopped at the budget to within one step; and what went wrong if not."""
    record = summary(out)
    rows = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines() if line.strip()]
    resumed_rows = [
        row for row in rows if row["step"] > int(Path(expected).name.split("-")[1]) and row.get("loss") is not None
    ]
    longest_step = max(step_times(out))
    ok = (
        record["resumed_from"] == expected
        and all(Path(expected).name != name for name in half_written)
        and resumed_rows
        and resumed_rows[0]["elapsed_s"] >= checkpoint_seconds(expected)
        # the run ends at the step whose end is nearest the deadline: before it or after it, by under a step
        and abs(record["train_s"] - budget) <= longest_step + 0.05
    )
    return bool(ok), f"resumed_from {record['resumed_from']} (expected {expected}), train_s {record['train_s']}"


def sigkill_resume(work: Path, fixtures: dict, runs: int, seed: int) -> list[Row]:
    from hf_tbc.budget.runs import last_complete_checkpoint

    rng = random.Random(seed)
    budget = 12.0
    held, mid_save, notes = 0, 0, []
    for index in range(runs):
        out, marker = work / f"kill-{index}", work / f"kill-{index}.marker"
        arguments = [
            *TINY,
            "--train_file",
            str(fixtures["text"]),
            "--time_budget",
            f"{budget}s",
            "--save_every",
            "1s",
            "--output_dir",
            str(out),
        ]
        during_save = index % 2 == 1
        phase = "save" if during_save else "none"
        process = start(
            [sys.executable, __file__, "--child", phase, str(marker), str(RECIPES / "run_mlm.py"), *arguments],
            work / f"kill-{index}.log",
        )
        started = wait_for(lambda: last_complete_checkpoint(str(out)) is not None, process)
        if started and during_save:
            started = wait_for(marker.exists, process)
        elif started:
            time.sleep(rng.uniform(0.0, 6.0))
        if not started or process.poll() is not None:
            process.kill()
            notes.append(f"run {index}: ended before the kill")
            continue
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        expected = last_complete_checkpoint(str(out))
        half_written = sorted(
            path.name for path in out.glob("checkpoint-*") if not (path / "trainer_state.json").is_file()
        )
        mid_save += int(bool(half_written))
        resumed = subprocess.run(
            [sys.executable, str(RECIPES / "run_mlm.py"), *arguments, "--resume_from_checkpoint", "true"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        if resumed.returncode != 0:
            notes.append(f"run {index}: resume exited {resumed.returncode}")
            continue
        ok, note = _resumed_right(out, expected, half_written, budget)
        held += int(ok)
        if not ok:
            notes.append(f"run {index}: {note}")
    detail = (
        f"{mid_save} of {runs} kills left a half-written checkpoint folder (no trainer_state.json), never resumed from"
    )
    return [
        Row(
            "SIGKILL after the first checkpoint, at a random moment or (every other run) while a checkpoint is "
            "being written, then --resume_from_checkpoint true: resumes from the newest complete checkpoint, budget "
            "right to within one step",
            runs,
            held,
            detail + ("; " + "; ".join(notes) if notes else ""),
        )
    ]


def sigterm(work: Path, fixtures: dict, runs: int) -> list[Row]:
    rows = []
    for phase, what in (("train", "a training step"), ("eval", "an evaluation"), ("save", "a checkpoint save")):
        held, notes = 0, []
        for index in range(runs):
            out, marker = work / f"term-{phase}-{index}", work / f"term-{phase}-{index}.marker"
            arguments = [
                *TINY,
                "--train_file",
                str(fixtures["text"]),
                "--time_budget",
                "30s",
                "--output_dir",
                str(out),
                "--eval_every",
                "2s",
                "--max_eval_samples",
                "200",
                "--save_every",
                "1s" if phase == "save" else "1h",
            ]
            process = start(
                [sys.executable, __file__, "--child", phase, str(marker), str(RECIPES / "run_mlm.py"), *arguments],
                work / f"term-{phase}-{index}.log",
            )
            if not wait_for(marker.exists, process):
                process.kill()
                notes.append(f"{phase} {index}: the phase never began")
                continue
            os.killpg(process.pid, signal.SIGTERM)
            code = process.wait(timeout=240)
            record = summary(out) if (out / "run_summary.json").exists() else {}
            checkpoint = record.get("checkpoint")
            preempted = (
                code == 143
                and record.get("stop_reason") == "preempted"
                and record.get("model_saved") is False
                and checkpoint
                and (Path(checkpoint) / "trainer_state.json").is_file()
                and not (out / "model.safetensors").exists()
            )
            resumed = subprocess.run(
                [
                    sys.executable,
                    str(RECIPES / "run_mlm.py"),
                    *arguments,
                    "--time_budget",
                    "8s",
                    "--resume_from_checkpoint",
                    "true",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO,
            )
            finished = resumed.returncode == 0 and summary(out).get("stop_reason") == "time_budget"
            held += int(bool(preempted and finished))
            if not (preempted and finished):
                notes.append(
                    f"{phase} {index}: exit {code}, record {record.get('stop_reason')}, resume exit "
                    f"{resumed.returncode}"
                )
        rows.append(
            Row(
                f"SIGTERM to the process group during {what}: exit 143, preempted record with a complete "
                "checkpoint, resume finishes",
                runs,
                held,
                "; ".join(notes) or "exit 143 every time",
            )
        )
    return rows


def _bad_input_files(work: Path) -> tuple[Path, Path, Path]:
    """Writes the bad files every recipe is given: (their folder, the folder outputs must not appear in, a run
    preempted before its model)."""
    data = work / "bad-data"
    data.mkdir(exist_ok=True)
    (data / "empty.txt").write_text("")
    (data / "latin1.txt").write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1") * 50)
    (data / "table.csv").write_text("review,stars\nfine film,5\n")
    (data / "header_only.tsv").write_text("sentence\tlabel\n")
    (data / "bad.yaml").write_text("time_budget: [15m\n")
    (data / "held.txt").write_text("another run's notes")
    out = work / "bad-out"
    (out / "existing").mkdir(parents=True, exist_ok=True)
    (out / "existing" / "notes.txt").write_text("keep me")
    (data / "unknown_key.yaml").write_text(f"time_budget: 1m\noutput_dir: {out / 'unknown_key'}\nbudget_minutes: 3\n")
    preempted = work / "preempted-run"
    preempted.mkdir(exist_ok=True)
    (preempted / "run_summary.json").write_text(
        json.dumps({"stop_reason": "preempted", "model_saved": False, "steps": 9})
    )
    (data / "study_bad.yaml").write_text("name: x\nsizes: [L2-H32\n")
    (data / "study_unknown.yaml").write_text(
        f"name: x\noutput_dir: {out / 'study_unknown'}\nsizes: [L2-H32]\n"
        "pretraining: {time_budget: 5s}\nfinetuning: {}\ncompression: {}\nteam: a\n"
    )
    (data / "study_size.yaml").write_text(
        f"name: x\noutput_dir: {out / 'study_size'}\nsizes: [L2-H33]\n"
        "pretraining: {time_budget: 5s}\nfinetuning: {}\ncompression: {}\n"
    )
    return data, out, preempted


def _bad_input_commands(work: Path, fixtures: dict) -> dict:
    """The command prefixes and the names the bad-input cases share."""
    data, out, preempted = _bad_input_files(work)
    python = sys.executable
    mlm = [python, str(RECIPES / "run_mlm.py"), *TINY]
    text = ["--train_file", str(fixtures["text"])]
    tune = [python, str(RECIPES / "run_classification.py")]
    files = ["--train_file", str(fixtures["train"]), "--validation_file", str(fixtures["dev"])]
    compress = [python, str(RECIPES / "compress.py"), "--validation_file", str(fixtures["dev"])]
    release = [python, str(RECIPES / "release.py")]
    variant = str(fixtures["compressed"] / "dense-fp32")
    card = ["--card_dataset", "stanfordnlp/sst2"]
    study = [python, str(RECIPES / "study.py")]
    return dict(
        data=data,
        out=out,
        preempted=preempted,
        mlm=mlm,
        text=text,
        tune=tune,
        files=files,
        compress=compress,
        release=release,
        variant=variant,
        card=card,
        study=study,
        fixtures=fixtures,
        o=lambda name: ["--output_dir", str(out / name)],
        work=work,
    )


def _run_mlm_bad_flags(c: dict) -> list[tuple[str, list[str], str, Path]]:
    """run_mlm's bad flags."""
    data, out, mlm, text, o = c["data"], c["out"], c["mlm"], c["text"], c["o"]
    return [
        (
            "run_mlm: budget not a duration",
            [*mlm, *text, "--time_budget", "soon", *o("a")],
            "is not a duration",
            out / "a",
        ),
        ("run_mlm: budget zero", [*mlm, *text, "--time_budget", "0", *o("b")], "must be positive", out / "b"),
        (
            "run_mlm: unknown size",
            [*mlm, *text, "--model_size", "XL", "--time_budget", "5s", *o("c")],
            "unknown model size",
            out / "c",
        ),
        (
            "run_mlm: missing train file",
            [*mlm, "--train_file", str(data / "missing.txt"), "--time_budget", "5s", *o("d")],
            "does not exist",
            out / "d",
        ),
        (
            "run_mlm: empty train file",
            [*mlm, "--train_file", str(data / "empty.txt"), "--time_budget", "5s", *o("e")],
            "is empty",
            out / "e",
        ),
        (
            "run_mlm: train file not UTF-8",
            [*mlm, "--train_file", str(data / "latin1.txt"), "--time_budget", "5s", *o("f")],
            "is not UTF-8",
            out / "f",
        ),
        (
            "run_mlm: text column absent",
            [*mlm, "--train_file", str(data / "table.csv"), "--text_column", "body", "--time_budget", "5s", *o("g")],
            "text column 'body'",
            out / "g",
        ),
        (
            "run_mlm: block size above positions",
            [*mlm, *text, "--block_size", "4096", "--time_budget", "5s", *o("h")],
            "exceeds the model's",
            out / "h",
        ),
    ]


def _run_mlm_bad_files(c: dict) -> list[tuple[str, list[str], str, Path]]:
    """run_mlm's bad data files, outputs and resumes."""
    data, out, mlm, text, o = c["data"], c["out"], c["mlm"], c["text"], c["o"]
    return [
        (
            "run_mlm: unwritable output",
            [*mlm, *text, "--time_budget", "5s", "--output_dir", "/proc/hf-tbc/run"],
            "cannot be written",
            Path("/proc/hf-tbc"),
        ),
        (
            "run_mlm: output holds another run",
            [*mlm, *text, "--time_budget", "5s", *o("existing")],
            "already holds files",
            out / "existing" / "run_summary.json",
        ),
        ("run_mlm: YAML that does not parse", [*mlm[:2], str(data / "bad.yaml")], "does not parse", out / "bad_yaml"),
        (
            "run_mlm: YAML with an unknown key",
            [*mlm[:2], str(data / "unknown_key.yaml")],
            "budget_minutes",
            out / "unknown_key",
        ),
        (
            "run_mlm: steps schedule without max_steps",
            [*mlm, *text, "--time_budget", "5s", "--schedule_by", "steps", *o("i")],
            "needs --max_steps",
            out / "i",
        ),
        (
            "run_mlm: restoring callback states",
            [*mlm, *text, "--time_budget", "5s", "--restore_callback_states_from_checkpoint", "true", *o("j")],
            "would replace the budget",
            out / "j",
        ),
        (
            "run_mlm: resume with no checkpoint",
            [*mlm, *text, "--time_budget", "5s", "--resume_from_checkpoint", "true", *o("k")],
            "no complete checkpoint",
            out / "k",
        ),
        (
            "run_mlm: masking probability out of range",
            [*mlm, *text, "--time_budget", "5s", "--mlm_probability", "1.5", *o("l")],
            "--mlm_probability 1.5",
            out / "l",
        ),
    ]


def _run_classification_bad_inputs(c: dict) -> list[tuple[str, list[str], str, Path]]:
    """run_classification.py's bad input."""
    work, data, out, preempted, tune, files, fixtures, o = (
        c["work"],
        c["data"],
        c["out"],
        c["preempted"],
        c["tune"],
        c["files"],
        c["fixtures"],
        c["o"],
    )
    return [
        (
            "run_classification: model folder missing",
            [*tune, "--model_name_or_path", str(work / "nowhere"), *files, *o("m")],
            "no such folder",
            out / "m",
        ),
        (
            "run_classification: label column absent",
            [*tune, "--model_name_or_path", str(fixtures["pretrained"]), *files, "--label_column", "stars", *o("n")],
            "--label_column",
            out / "n",
        ),
        (
            "run_classification: validation file without rows",
            [
                *tune,
                "--model_name_or_path",
                str(fixtures["pretrained"]),
                "--train_file",
                str(fixtures["train"]),
                "--validation_file",
                str(data / "header_only.tsv"),
                *o("p"),
            ],
            "has no rows",
            out / "p",
        ),
        (
            "run_classification: preempted pretraining",
            [*tune, "--model_name_or_path", str(preempted), *files, *o("q")],
            "preempted at step 9",
            out / "q",
        ),
        (
            "run_classification: not a GLUE task",
            [*tune, "--model_name_or_path", str(fixtures["pretrained"]), "--task_name", "xnli", *o("r")],
            "not a GLUE classification task",
            out / "r",
        ),
    ]


def _compress_bad_inputs(c: dict) -> list[tuple[str, list[str], str, Path]]:
    """compress.py's bad input."""
    work, out, compress, fixtures, o = c["work"], c["out"], c["compress"], c["fixtures"], c["o"]
    return [
        (
            "compress: sparsity 1.0",
            [*compress, "--model_name_or_path", str(fixtures["finetuned"]), "--sparsities", "0,1.0", *o("s")],
            "must be in [0, 1)",
            out / "s",
        ),
        (
            "compress: sparsity not a number",
            [*compress, "--model_name_or_path", str(fixtures["finetuned"]), "--sparsities", "half", *o("t")],
            "is not a number",
            out / "t",
        ),
        (
            "compress: unknown quantization",
            [*compress, "--model_name_or_path", str(fixtures["finetuned"]), "--quantization", "int3", *o("u")],
            "unknown quantization method",
            out / "u",
        ),
        (
            "compress: model without a head",
            [*compress, "--model_name_or_path", str(fixtures["pretrained"]), *o("v")],
            "has no classification head",
            out / "v",
        ),
        (
            "compress: model folder missing",
            [*compress, "--model_name_or_path", str(work / "nowhere"), *o("w")],
            "no such folder",
            out / "w",
        ),
    ]


def _release_bad_inputs(c: dict) -> list[tuple[str, list[str], str, Path]]:
    """release.py's bad input."""
    out, release, variant, card, fixtures, o = c["out"], c["release"], c["variant"], c["card"], c["fixtures"], c["o"]
    return [
        (
            "release: folder without records",
            [
                *release,
                "--compression_dirs",
                str(fixtures["finetuned"]),
                "--dry_run",
                "--hub_organization",
                "org",
                *card,
                *o("x"),
            ],
            "missing record",
            out / "x",
        ),
        (
            "release: invalid repo id",
            [*release, "--variants", variant, "--dry_run", "--hub_organization", "my org", *card, *o("y")],
            "invalid repo id",
            out / "y",
        ),
        (
            "release: no token",
            [*release, "--variants", variant, "--hub_organization", "org", *card, *o("z")],
            "no Hugging Face token",
            out / "z",
        ),
        (
            "release: local data without a card dataset",
            [*release, "--variants", variant, "--dry_run", "--hub_organization", "org", *o("aa")],
            "--card_dataset",
            out / "aa",
        ),
    ]


def _study_bad_inputs(c: dict) -> list[tuple[str, list[str], str, Path]]:
    """study.py's bad configs."""
    data, out, study = c["data"], c["out"], c["study"]
    return [
        (
            "study: config missing",
            [*study, "--config", str(data / "missing.yaml")],
            "does not exist",
            out / "study_missing",
        ),
        (
            "study: config that does not parse",
            [*study, "--config", str(data / "study_bad.yaml")],
            "does not parse",
            out / "study_bad",
        ),
        (
            "study: unknown key",
            [*study, "--config", str(data / "study_unknown.yaml")],
            "unknown keys",
            out / "study_unknown",
        ),
        (
            "study: unknown size",
            [*study, "--config", str(data / "study_size.yaml")],
            "model size 'L2-H33': needs at least one layer and a hidden size of at least 32 divisible by its 2 heads",
            out / "study_size",
        ),
    ]


def bad_inputs(work: Path, fixtures: dict) -> list[tuple[str, list[str], str, Path]]:
    """(name, command, what the error line must say, the output that must not appear), recipe by recipe."""
    shared = _bad_input_commands(work, fixtures)
    return [
        *(
            case
            for cases in (
                _run_mlm_bad_flags,
                _run_mlm_bad_files,
                _run_classification_bad_inputs,
                _compress_bad_inputs,
                _release_bad_inputs,
                _study_bad_inputs,
            )
            for case in cases(shared)
        )
    ]


def check_bad_input(command: list[str], message: str, output: Path, outputs: Path, env: dict) -> tuple[bool, str]:
    """Runs one bad-input case; ``outputs`` is the folder every case writes under, which must not change."""
    before = sorted(map(str, outputs.rglob("*")))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    after = sorted(map(str, outputs.rglob("*")))
    problems = []
    if done.returncode != 2:
        problems.append(f"exit {done.returncode}")
    if len(errors) != 1 or message not in errors[0]:
        problems.append(f"error lines {errors or done.stderr.strip().splitlines()[-1:]}")
    if "Traceback" in done.stderr:
        problems.append("traceback")
    if output.exists() or before != after:
        problems.append(f"left {output}")
    return not problems, errors[0] if errors else "; ".join(problems)


def bad_input_rows(work: Path, fixtures: dict) -> tuple[list[Row], list[tuple[str, bool, str]]]:
    from hf_tbc.launch import available_cores

    env = {key: value for key, value in os.environ.items() if key != "HF_TOKEN"}
    env.update(HF_HOME=str(work / "hf-home-without-token"), HF_HUB_OFFLINE="1")
    cases = bad_inputs(work, fixtures)
    with ThreadPoolExecutor(max_workers=available_cores()) as pool:  # each case is a process that starts, checks, exits
        outcomes = list(pool.map(lambda case: check_bad_input(case[1], case[2], case[3], work / "bad-out", env), cases))
    results = [(name, ok, line) for (name, *_), (ok, line) in zip(cases, outcomes)]
    held = sum(ok for _, ok, _ in results)
    failed = [f"{name}: {line}" for name, ok, line in results if not ok]
    recipes = sorted({name.split(":")[0] for name, _, _ in results})
    return [
        Row(
            f"bad input across {', '.join(recipes)}: one `error:` line naming the fix, exit 2, nothing left behind",
            len(results),
            held,
            "; ".join(failed) or f"{len(results)} distinct cases",
        )
    ], results


def hub_faults(work: Path, fixtures: dict) -> list[Row]:
    from tests.hub_server import TOKEN, FakeHub

    variant = str(fixtures["compressed"] / "dense-fp32")
    cases = [
        ("5xx on every commit", dict(fail_commits=10), "down"),
        ("429 twice, then accepted", dict(fail_commits=2, fail_status=429), "up"),
        ("connection dropped after the commit landed", dict(drop_commits=1), "up"),
        ("connection dropped before the commit", dict(drop_before_commit=1), "up"),
    ]
    held, notes = 0, []
    for index, (what, faults, expect) in enumerate(cases):
        with FakeHub() as hub:
            for key, value in faults.items():
                setattr(hub, key, value)
            out = work / f"hub-{index}"
            env = {
                **os.environ,
                "HF_HUB_OFFLINE": "0",
                "HF_ENDPOINT": hub.url,
                "HF_TOKEN": TOKEN,
                "HF_HOME": str(work / "hf-hub"),
            }
            done = subprocess.run(
                [
                    sys.executable,
                    str(RECIPES / "release.py"),
                    "--variants",
                    variant,
                    "--hub_organization",
                    "org",
                    "--card_dataset",
                    "stanfordnlp/sst2",
                    "--output_dir",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO,
                env=env,
            )
            report = json.loads((out / "release.json").read_text()) if (out / "release.json").exists() else []
            reported = {entry["repo_id"] for entry in report if entry["status"] in ("created", "updated", "unchanged")}
            on_hub = {name for name, state in hub.repos.items() if "README.md" in state["files"]}
            commits = {name: len(state["commits"]) for name, state in hub.repos.items()}
            ok = reported == on_hub and (TOKEN not in done.stdout + done.stderr)
            # the repo's creation, then ours
            pushed_once = bool(commits) and all(count == 2 for count in commits.values())
            ok &= (done.returncode != 0 and not on_hub) if expect == "down" else (done.returncode == 0 and pushed_once)
            held += int(ok)
            if not ok:
                notes.append(
                    f"{what}: exit {done.returncode}, reported {sorted(reported)}, on the Hub {sorted(on_hub)}"
                )
    return [
        Row(
            "Hub push under faults (" + "; ".join(what for what, _, _ in cases) + "): reported pushed = on the Hub, "
            "one commit per repo",
            len(cases),
            held,
            "; ".join(notes) or "release.json matched the Hub every time",
        )
    ]


def one_process_eval_loss(out: Path, text: Path) -> float:
    """The saved model of a run_mlm.py run in ``out`` scored in this one process on the validation blocks the run
    evaluated on (same split, packing and seeded masks), as a mean over every masked position, in the run's
    precision."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from hf_tbc.tasks.mlm.data import load_text_datasets, pack_texts
    from hf_tbc.tasks.mlm.masking import mask_once

    record = summary(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForMaskedLM.from_pretrained(out).eval()
    blocks = pack_texts(
        load_text_datasets(train_file=str(text), seed=42)["validation"], tokenizer, record["block_size"]
    )
    blocks = mask_once(blocks.select(range(min(2000, len(blocks)))), tokenizer, record["eval_mlm_probability"], 42)
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=record["precision"] == "bf16"):
        for start in range(0, len(blocks), 64):
            batch = blocks[start : start + 64]
            labels = torch.tensor(batch["labels"])
            loss = model(input_ids=torch.tensor(batch["input_ids"]), labels=labels).loss
            total, count = total + loss.item() * int((labels != -100).sum()), count + int((labels != -100).sum())
    return total / count


def _ddp_probe_row(work: Path) -> Row:
    """A 2-process step on a batch split unevenly across the ranks, against one process on the whole batch."""
    import torch
    from transformers import RobertaPreLayerNormForMaskedLM

    from tests.ddp_probe import blocks as probe_blocks

    out = work / "ddp-probe"
    done = subprocess.run(
        [*TWO_PROCESSES, str(REPO / "tests" / "ddp_probe.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    ok, detail = False, f"exit {done.returncode}"
    if done.returncode == 0:
        logged = json.loads((out / "logged.json").read_text())
        model = RobertaPreLayerNormForMaskedLM.from_pretrained(out / "initial")
        batch = {key: torch.tensor(probe_blocks()[key]) for key in ("input_ids", "attention_mask", "labels")}
        loss = model(**batch).loss
        loss.backward()
        recorded = torch.load(out / "gradients.pt")
        worst = max(
            float((recorded[name] - p.grad).abs().max() / p.grad.abs().max().clamp_min(1e-12))
            for name, p in model.named_parameters()
            if p.grad is not None
        )
        ok = (
            abs(logged["loss"] / loss.item() - 1) < 1e-4
            and abs(logged["eval_loss"] / loss.item() - 1) < 1e-4
            and worst < 1e-3
        )
        detail = (
            f"logged {logged['loss']:.5f}, evaluated {logged['eval_loss']:.5f}, one process {loss.item():.5f}; "
            f"largest gradient difference {worst:.1e} of the tensor's largest entry"
        )
    return Row(
        "2-process training step on a batch whose ranks hold 1+2 vs 4+9 labels (or any split): logged loss, "
        "evaluated loss and gradient equal one process's on the whole batch",
        1,
        int(ok),
        detail,
    )


def ddp_losses(work: Path, fixtures: dict, runs: int) -> list[Row]:

    held, gaps, notes = 0, [], []
    for index in range(runs):
        out = work / f"ddp-loss-{index}"
        command = two_process_run(fixtures, out)
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
        if done.returncode != 0:
            notes.append(f"run {index}: exit {done.returncode}")
            continue
        recorded = summary(out)["final_eval_loss"]
        scored = one_process_eval_loss(out, fixtures["text"])
        gaps.append(recorded / scored - 1)
        held += int(abs(gaps[-1]) < 0.01)
    detail = f"recorded / one-process loss − 1 from {min(gaps):+.2%} to {max(gaps):+.2%}" if gaps else "no run finished"
    rows = [
        Row(
            "2-process run_mlm.py: recorded final validation loss against the saved model scored in one process "
            "(within 1 %)",
            runs,
            held,
            "; ".join([detail, *notes]),
        )
    ]

    rows.append(_ddp_probe_row(work))
    return rows


def _release_env(hub, work: Path) -> dict:
    from tests.hub_server import TOKEN

    return {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(work / "hf-hub"),
    }


FIVE = ("pruned50-fp32", "pruned50-onnx-int8", "dense-quanto-int8", "dense-onnx-int8")  # + their dense parent


def _five_repos(fixtures: dict, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(RECIPES / "release.py"),
        "--variants",
        *(str(fixtures["compressed"] / name) for name in FIVE),
        "--hub_organization",
        "org",
        "--card_dataset",
        "stanfordnlp/sst2",
        "--output_dir",
        str(out),
        *extra,
    ]


def _repo_ids(prefix: str = "tbc-") -> list[str]:
    return [f"org/{prefix}L2-H32-sst2-{name}" for name in ("dense-fp32", *FIVE)]


def preflight_faults(work: Path, fixtures: dict) -> list[Row]:
    from tests.hub_server import FakeHub

    rests = sorted((len(repo.split("/")[1]) - len("tbc-") for repo in _repo_ids()), reverse=True)
    prefix = "p" * (95 - rests[1]) + "-"  # only the longest name, the third, is over the Hub's 96 characters
    cases = [
        ("an existing repo in third place, no --overwrite", "existing", "already exists with other content"),
        ("a read-only token", "read", "token is read-only"),
        ("a namespace the user is not a member of", "member", "is not a member of the organisation org"),
        ("an invalid name in third place", "invalid", "invalid repo id"),
    ]
    held, notes = 0, []
    for index, (what, fault, message) in enumerate(cases):
        with FakeHub() as hub:
            out = work / f"preflight-{index}"
            extra = []
            if fault == "existing":
                hub.repos[_repo_ids()[2]] = {
                    "files": {"notes.txt": b"theirs"},
                    "commits": ["c0"],
                    "messages": ["theirs"],
                    "private": False,
                }
            elif fault == "read":
                hub.token_role = "read"
            elif fault == "member":
                hub.orgs = []
            else:
                extra = ["--repo_prefix", prefix]
            before = {repo: list(state["commits"]) for repo, state in hub.repos.items()}
            done = subprocess.run(
                _five_repos(fixtures, out, *extra),
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO,
                env=_release_env(hub, work),
            )
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            writes = [request for request in hub.requests if "/api/repos/create" in request or "/commit/" in request]
            ok = (
                done.returncode == 2
                and len(errors) == 1
                and message in errors[0]
                and not writes
                and {repo: state["commits"] for repo, state in hub.repos.items()} == before
                and not out.exists()
            )
            held += int(ok)
            if not ok:
                notes.append(
                    f"{what}: exit {done.returncode}, {len(writes)} writes, {errors[-1:] or done.stderr[-300:]}"
                )
    return [
        Row(
            "five-repo release that cannot complete (" + "; ".join(what for what, _, _ in cases) + "): one error line, "
            "nothing created or committed on the Hub, nothing written locally",
            len(cases),
            held,
            "; ".join(notes) or "no Hub write in any case",
        )
    ]


def midway_fault(work: Path, fixtures: dict) -> list[Row]:
    from tests.hub_server import FakeHub

    out = work / "midway"
    with FakeHub() as hub:
        hub.down_after_commits = 2
        cut = subprocess.run(
            _five_repos(fixtures, out),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
            env=_release_env(hub, work),
        )
        report = json.loads((out / "release.json").read_text()) if (out / "release.json").exists() else []
        statuses = [entry["status"] for entry in report]
        landed = {repo for repo, state in hub.repos.items() if "README.md" in state["files"]}
        first = {repo: list(hub.repos[repo]["commits"]) for repo in landed}
        hub.down_after_commits = None
        rerun = subprocess.run(
            _five_repos(fixtures, out),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
            env=_release_env(hub, work),
        )
        again = [entry["status"] for entry in json.loads((out / "release.json").read_text())]
        complete = all(
            "README.md" in hub.repos.get(repo, {}).get("files", {}) and len(hub.repos[repo]["commits"]) == 2
            for repo in _repo_ids()
        )
        ok = (
            cut.returncode == 1
            and "2 of 5 repos landed" in cut.stderr
            and statuses == ["created", "created", "failed", "not pushed", "not pushed"]
            and landed == set(_repo_ids()[:2])
            and rerun.returncode == 0
            and again[:2] == ["unchanged", "unchanged"]
            and all(status in ("created", "updated") for status in again[2:])
            and {repo: hub.repos[repo]["commits"] for repo in landed} == first
            and complete
        )
    detail = f"first run {statuses} (exit {cut.returncode}); rerun {again} (exit {rerun.returncode})"
    return [
        Row(
            "connection dropped for good after the 2nd of 5 commits, then a rerun: release.json says which landed, "
            "the rerun pushes exactly the rest, no second commit where one landed",
            1,
            int(ok),
            detail,
        )
    ]


def leak_scan(work: Path, fixtures: dict) -> list[Row]:
    """Pushes a release of local-file runs and reads every byte the Hub holds for strings of this machine."""
    import re
    import socket

    from tests.hub_server import FakeHub

    out = work / "leaks"
    paths = {"the work folder": str(work), "the home folder": str(Path.home())}  # in any file, weights included
    names = {"the data folder's name": fixtures["data"].name, "the host name": socket.gethostname()}  # words of text
    with FakeHub() as hub:
        done = subprocess.run(
            _five_repos(fixtures, out),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
            env=_release_env(hub, work),
        )
        files = [(repo, path, data) for repo, state in hub.repos.items() for path, data in state["files"].items()]

    def text(data: bytes):
        try:
            return None if b"\0" in data else data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    hits = [
        f"{repo}/{path}: {what}"
        for repo, path, data in files
        for what, needle in paths.items()
        if needle.encode() in data
    ]
    hits += [
        f"{repo}/{path}: {what}"
        for repo, path, data in files
        for what, name in names.items()
        if text(data) is not None and re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text(data), re.I)
    ]
    hits += [
        f"repo id {repo}: {what}"
        for repo in {repo for repo, _, _ in files}
        for what, name in names.items()
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", repo, re.I)
    ]
    ok = done.returncode == 0 and len(hub.repos) == 5 and not hits
    names = sorted({path for _, path, _ in files})
    return [
        Row(
            "release of local-file runs pushed, every file on the Hub read for the work and home folders' paths "
            "(all bytes) and the data folder's name and the host name (as words of the text files and repo ids)",
            1,
            int(ok),
            f"exit {done.returncode}, {len(files)} files in {len(hub.repos)} repos ({', '.join(names)}); "
            + ("; ".join(hits) if hits else "no local string"),
        )
    ]


def compress_rerun(work: Path, fixtures: dict) -> list[Row]:
    import shutil

    grid = work / "grid-rerun"
    shutil.copytree(fixtures["compressed"], grid)
    before = {path.relative_to(grid): path.read_bytes() for path in sorted(grid.rglob("*")) if path.is_file()}
    marker = work / "compress-fail.marker"
    arguments = [
        "--model_name_or_path",
        str(fixtures["finetuned"]),
        "--validation_file",
        str(fixtures["dev"]),
        "--sparsities",
        "0,0.5,0.9",
        "--quantization",
        "none",
        "--latency_runs",
        "1",
        "--latency_batch_size",
        "4",
        "--output_dir",
        str(grid),
        "--overwrite_output_dir",
        "true",
    ]
    done = subprocess.run(
        [sys.executable, __file__, "--child", "compress_fail", str(marker), str(RECIPES / "compress.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    after = {path.relative_to(grid): path.read_bytes() for path in sorted(grid.rglob("*")) if path.is_file()}
    leftovers = sorted(path.name for path in work.iterdir() if path.name.startswith(f".{grid.name}"))
    ok = done.returncode != 0 and marker.exists() and after == before and not leftovers
    return [
        Row(
            "compress.py rerun over a finished grid with --overwrite_output_dir, failing at its second variant: the "
            "old grid whole, byte for byte, no staging left",
            1,
            int(ok),
            f"exit {done.returncode}, {len(before)} files before, {sum(after.get(k) == v for k, v in before.items())} "
            f"identical after, leftovers {leftovers or 'none'}",
        )
    ]


def _sigterm_the_launcher(
    out: Path, launcher: list[str], expected: tuple[int, ...], fixtures: dict
) -> tuple[bool, Optional[str], Optional[int], Optional[float]]:
    """One run: SIGTERM to the launcher alone once a checkpoint is saved, then the resume. Returns whether every
    part held, what went wrong, the launcher's exit code and how long the last process took to go."""
    arguments = [*launcher, str(RECIPES / "run_mlm.py"), *TINY, "--train_file", str(fixtures["text"])]
    arguments += ["--save_every", "1s", "--output_dir", str(out)]
    with (out.parent / f"{out.name}.log").open("w") as handle:  # a file, not a pipe: an orphan goes on writing
        process = subprocess.Popen(
            [*arguments, "--time_budget", "5m"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
    if not wait_for(lambda: list(out.glob("checkpoint-*/trainer_state.json")), process):
        process.kill()
        return False, "no checkpoint", None, None
    time.sleep(1.5)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)  # the launcher alone, as a pod's PID 1 is signalled
    code = process.wait(timeout=240)
    while str(out) in command_lines() and time.monotonic() - sent <= 120:
        time.sleep(0.2)
    wait = time.monotonic() - sent
    record = summary(out) if (out / "run_summary.json").exists() else {}
    orphan = str(out) in command_lines()
    checkpoint = record.get("checkpoint")
    resumed = subprocess.run(
        [*arguments, "--time_budget", "4s", "--resume_from_checkpoint", "true"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    ok = (
        code in expected
        and record.get("stop_reason") == "preempted"
        and not orphan
        and checkpoint
        and (Path(checkpoint) / "trainer_state.json").is_file()
        and resumed.returncode == 0
        and summary(out).get("stop_reason") == "time_budget"
    )
    note = f"exit {code}, record {record.get('stop_reason')}, orphan {orphan}, resume exit {resumed.returncode}"
    return bool(ok), None if ok else note, code, wait


def launcher_sigterm(work: Path, fixtures: dict, runs: int) -> list[Row]:
    one = ["--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    two = "--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no".split()
    two += ["--main_process_port", "0"]  # a free port: runs beside other DDP runs (a parallel test run) do not collide
    launchers = [
        ("hf-tbc-launch, 1 process", [sys.executable, "-m", "hf_tbc.launch", *one], (143,)),
        ("hf-tbc-launch, 2 processes", [sys.executable, "-m", "hf_tbc.launch", *two], (143,)),
        (
            "plain accelerate launch, 1 process",
            [sys.executable, "-m", "accelerate.commands.launch", *one],
            (-signal.SIGTERM, 143),
        ),
    ]
    rows = []
    for case, (what, launcher, expected) in enumerate(launchers):
        held, notes, waits, codes = 0, [], [], []
        for index in range(runs):
            ok, note, code, wait = _sigterm_the_launcher(
                work / f"launcher-{case}-{index}", launcher, expected, fixtures
            )
            held += int(ok)
            codes += [code] if code is not None else []
            waits += [wait] if wait is not None else []
            if note:
                notes.append(f"run {index}: {note}")
        seen = ", ".join(
            f"{count}× " + ("killed by the signal (143)" if code < 0 else f"exit {code}")
            for code, count in sorted(Counter(codes).items())
        )
        detail = (seen or "no exit") + (
            f"; SIGTERM to last process gone {min(waits):.1f}–{max(waits):.1f} s" if waits else ""
        )
        rows.append(
            Row(
                f"SIGTERM to the launcher alone ({what}): resumable checkpoint, preempted record, no process "
                f"left training, exit 143; the resume finishes",
                runs,
                held,
                "; ".join([detail, *notes]),
            )
        )
    return rows


def hardware() -> str:
    from hf_tbc.hardware import cpu_info

    return f"{cpu_info().model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections",
        default="ddp,ddp_loss,sigkill,sigterm,launcher,bad_input,hub,preflight,midway,leaks,compress_rerun,two_nodes",
    )
    parser.add_argument("--ddp_runs", type=int, default=20)
    parser.add_argument("--ddp_loss_runs", type=int, default=3)
    parser.add_argument("--kill_runs", type=int, default=10)
    parser.add_argument("--term_runs", type=int, default=2, help="runs per phase (training, evaluation, save)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hf-tbc-faults-") as scratch:
        work = Path(scratch)
        os.environ["HF_TBC_CACHE"] = str(work / "cache")
        fixtures = build_fixtures(work)
        rows: list[Row] = []
        if "ddp" in sections:
            rows += ddp_stop(work, fixtures, args.ddp_runs)
        if "ddp_loss" in sections:
            rows += ddp_losses(work, fixtures, args.ddp_loss_runs)
        if "sigkill" in sections:
            rows += sigkill_resume(work, fixtures, args.kill_runs, args.seed)
        if "sigterm" in sections:
            rows += sigterm(work, fixtures, args.term_runs)
        if "bad_input" in sections:
            bad_rows, cases = bad_input_rows(work, fixtures)
            rows += bad_rows
            for name, ok, line in cases:
                print(f"  {'held' if ok else 'FAILED':>6}  {name}: {line}")
        if "launcher" in sections:
            rows += launcher_sigterm(work, fixtures, args.term_runs)
        if "hub" in sections:
            rows += hub_faults(work, fixtures)
        if "preflight" in sections:
            rows += preflight_faults(work, fixtures)
        if "midway" in sections:
            rows += midway_fault(work, fixtures)
        if "leaks" in sections:
            rows += leak_scan(work, fixtures)
        if "compress_rerun" in sections:
            rows += compress_rerun(work, fixtures)
        if "two_nodes" in sections:
            from two_nodes import two_node_rows

            rows += [Row(*row) for row in two_node_rows(work, fixtures["text"], args.ddp_runs, args.term_runs)]
    print(f"\nFault matrix on {hardware()}, {time.monotonic() - started:.0f} s\n")
    print("| fault | runs | held | detail |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row.fault} | {row.runs} | {row.held} | {row.detail} |")
    sys.exit(0 if all(row.held == row.runs for row in rows) else 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5:])
    else:
        main()
