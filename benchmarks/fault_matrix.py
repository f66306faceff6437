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

A fault is injected into a run by starting it through this script (`--child PHASE`), which slows the phase down
and writes a marker when it begins, so the signal lands inside it; the recipe itself is unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test Hub lives in tests/
RECIPES = REPO / "recipes"
TINY = ["--model_size", "L2-H32", "--vocab_size", "500", "--block_size", "32", "--per_device_train_batch_size", "8",
        "--logging_steps", "1", "--disable_tqdm", "true", "--dataloader_num_workers", "0"]


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

    if phase == "save":  # between the model file and trainer_state.json: a save in progress, half on disk
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
    from hf_tbc.data import default_corpus

    lines = default_corpus().read_text().splitlines()
    (work / "text.txt").write_text("\n".join(lines[:3000]) + "\n")
    rows = ["sentence\tlabel"] + [f"{line.replace(chr(9), ' ')}\t{int('the ' in line.lower()[:60])}" for line in lines[3000:3600]]
    (work / "train.tsv").write_text("\n".join(rows[:501]) + "\n")
    (work / "dev.tsv").write_text("\n".join([rows[0], *rows[501:]]) + "\n")
    python = [sys.executable]
    steps = [
        [*python, str(RECIPES / "run_mlm.py"), *TINY, "--train_file", str(work / "text.txt"), "--time_budget", "4s",
         "--output_dir", str(work / "pretrained")],
        [*python, str(RECIPES / "run_classification.py"), "--model_name_or_path", str(work / "pretrained"), "--train_file",
         str(work / "train.tsv"), "--validation_file", str(work / "dev.tsv"), "--time_budget", "4s", "--max_seq_length",
         "64", "--disable_tqdm", "true", "--output_dir", str(work / "finetuned")],
        [*python, str(RECIPES / "compress.py"), "--model_name_or_path", str(work / "finetuned"), "--validation_file",
         str(work / "dev.tsv"), "--sparsities", "0", "--quantization", "none", "--latency_runs", "1",
         "--latency_batch_size", "4", "--output_dir", str(work / "compressed")],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"building the fixtures failed: {' '.join(command[:2])}\n{done.stderr[-3000:]}")
    return {"text": work / "text.txt", "train": work / "train.tsv", "dev": work / "dev.tsv",
            "pretrained": work / "pretrained", "finetuned": work / "finetuned", "compressed": work / "compressed"}


# -- sections ------------------------------------------------------------------------------------------------
def ddp_stop(work: Path, fixtures: dict, runs: int) -> list[Row]:
    held, stops = 0, []
    for index in range(runs):
        out = work / f"ddp-{index}"
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   str(RECIPES / "run_mlm.py"), *TINY, "--train_file", str(fixtures["text"]), "--time_budget", "6s",
                   "--output_dir", str(out)]
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
    return [Row("2-process CPU DDP, 6 s budget: both ranks stop at the same step, no hang (timeout 240 s)", runs, held, detail)]


def sigkill_resume(work: Path, fixtures: dict, runs: int, seed: int) -> list[Row]:
    from hf_tbc.training import last_complete_checkpoint

    rng = random.Random(seed)
    budget = 12.0
    held, mid_save, notes = 0, 0, []
    for index in range(runs):
        out, marker = work / f"kill-{index}", work / f"kill-{index}.marker"
        arguments = [*TINY, "--train_file", str(fixtures["text"]), "--time_budget", f"{budget}s", "--save_every", "1s",
                     "--output_dir", str(out)]
        during_save = index % 2 == 1
        phase = "save" if during_save else "none"
        process = start([sys.executable, __file__, "--child", phase, str(marker), str(RECIPES / "run_mlm.py"), *arguments],
                        work / f"kill-{index}.log")
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
        half_written = sorted(path.name for path in out.glob("checkpoint-*") if not (path / "trainer_state.json").is_file())
        mid_save += int(bool(half_written))
        resumed = subprocess.run([sys.executable, str(RECIPES / "run_mlm.py"), *arguments, "--resume_from_checkpoint", "true"],
                                 capture_output=True, text=True, timeout=300, cwd=REPO)
        if resumed.returncode != 0:
            notes.append(f"run {index}: resume exited {resumed.returncode}")
            continue
        record = summary(out)
        rows = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines() if line.strip()]
        resumed_rows = [row for row in rows if row["step"] > int(Path(expected).name.split("-")[1]) and row.get("loss") is not None]
        longest_step = max(step_times(out))
        ok = (record["resumed_from"] == expected
              and all(Path(expected).name != name for name in half_written)
              and resumed_rows and resumed_rows[0]["elapsed_s"] >= checkpoint_seconds(expected)
              and budget <= record["train_s"] <= budget + longest_step + 0.05)
        held += int(ok)
        if not ok:
            notes.append(f"run {index}: resumed_from {record['resumed_from']} (expected {expected}), train_s {record['train_s']}")
    detail = f"{mid_save} of {runs} kills left a half-written checkpoint folder (no trainer_state.json), never resumed from"
    return [Row("SIGKILL after the first checkpoint, at a random moment or (every other run) while a checkpoint is "
                "being written, then --resume_from_checkpoint true: resumes from the newest complete checkpoint, budget "
                "right to within one step", runs, held,
                detail + ("; " + "; ".join(notes) if notes else ""))]


def sigterm(work: Path, fixtures: dict, runs: int) -> list[Row]:
    rows = []
    for phase, what in (("train", "a training step"), ("eval", "an evaluation"), ("save", "a checkpoint save")):
        held, notes = 0, []
        for index in range(runs):
            out, marker = work / f"term-{phase}-{index}", work / f"term-{phase}-{index}.marker"
            arguments = [*TINY, "--train_file", str(fixtures["text"]), "--time_budget", "30s", "--output_dir", str(out),
                         "--eval_every", "2s", "--max_eval_samples", "200", "--save_every", "1s" if phase == "save" else "1h"]
            process = start([sys.executable, __file__, "--child", phase, str(marker), str(RECIPES / "run_mlm.py"), *arguments],
                            work / f"term-{phase}-{index}.log")
            if not wait_for(marker.exists, process):
                process.kill()
                notes.append(f"{phase} {index}: the phase never began")
                continue
            os.killpg(process.pid, signal.SIGTERM)
            code = process.wait(timeout=240)
            record = summary(out) if (out / "run_summary.json").exists() else {}
            checkpoint = record.get("checkpoint")
            preempted = (code == 143 and record.get("stop_reason") == "preempted" and record.get("model_saved") is False
                         and checkpoint and (Path(checkpoint) / "trainer_state.json").is_file()
                         and not (out / "model.safetensors").exists())
            resumed = subprocess.run([sys.executable, str(RECIPES / "run_mlm.py"), *arguments, "--time_budget", "8s",
                                      "--resume_from_checkpoint", "true"], capture_output=True, text=True, timeout=300, cwd=REPO)
            finished = resumed.returncode == 0 and summary(out).get("stop_reason") == "time_budget"
            held += int(bool(preempted and finished))
            if not (preempted and finished):
                notes.append(f"{phase} {index}: exit {code}, record {record.get('stop_reason')}, resume exit {resumed.returncode}")
        rows.append(Row(f"SIGTERM to the process group during {what}: exit 143, preempted record with a complete "
                        "checkpoint, resume finishes", runs, held, "; ".join(notes) or "exit 143 every time"))
    return rows


def bad_inputs(work: Path, fixtures: dict) -> list[tuple[str, list[str], str, Path]]:
    """(name, command, what the error line must say, the output that must not appear)."""
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
    (preempted / "run_summary.json").write_text(json.dumps({"stop_reason": "preempted", "model_saved": False, "steps": 9}))
    (data / "study_bad.yaml").write_text("name: x\nsizes: [L2-H32\n")
    (data / "study_unknown.yaml").write_text(f"name: x\noutput_dir: {out / 'study_unknown'}\nsizes: [L2-H32]\n"
                                             "pretraining: {time_budget: 5s}\nfinetuning: {}\ncompression: {}\nteam: a\n")
    (data / "study_size.yaml").write_text(f"name: x\noutput_dir: {out / 'study_size'}\nsizes: [L2-H33]\n"
                                          "pretraining: {time_budget: 5s}\nfinetuning: {}\ncompression: {}\n")
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
    o = lambda name: ["--output_dir", str(out / name)]  # noqa: E731
    return [
        ("run_mlm: budget not a duration", [*mlm, *text, "--time_budget", "soon", *o("a")], "is not a duration", out / "a"),
        ("run_mlm: budget zero", [*mlm, *text, "--time_budget", "0", *o("b")], "must be positive", out / "b"),
        ("run_mlm: unknown size", [*mlm, *text, "--model_size", "XL", "--time_budget", "5s", *o("c")], "unknown model size", out / "c"),
        ("run_mlm: missing train file", [*mlm, "--train_file", str(data / "missing.txt"), "--time_budget", "5s", *o("d")],
         "does not exist", out / "d"),
        ("run_mlm: empty train file", [*mlm, "--train_file", str(data / "empty.txt"), "--time_budget", "5s", *o("e")],
         "is empty", out / "e"),
        ("run_mlm: train file not UTF-8", [*mlm, "--train_file", str(data / "latin1.txt"), "--time_budget", "5s", *o("f")],
         "is not UTF-8", out / "f"),
        ("run_mlm: text column absent", [*mlm, "--train_file", str(data / "table.csv"), "--text_column", "body",
                                         "--time_budget", "5s", *o("g")], "text column 'body'", out / "g"),
        ("run_mlm: block size above positions", [*mlm, *text, "--block_size", "4096", "--time_budget", "5s", *o("h")],
         "exceeds the model's", out / "h"),
        ("run_mlm: unwritable output", [*mlm, *text, "--time_budget", "5s", "--output_dir", "/proc/hf-tbc/run"],
         "cannot be written", Path("/proc/hf-tbc")),
        ("run_mlm: output holds another run", [*mlm, *text, "--time_budget", "5s", *o("existing")], "already holds files",
         out / "existing" / "run_summary.json"),
        ("run_mlm: YAML that does not parse", [*mlm[:2], str(data / "bad.yaml")], "does not parse", out / "bad_yaml"),
        ("run_mlm: YAML with an unknown key", [*mlm[:2], str(data / "unknown_key.yaml")], "budget_minutes",
         out / "unknown_key"),
        ("run_mlm: steps schedule without max_steps", [*mlm, *text, "--time_budget", "5s", "--schedule_by", "steps", *o("i")],
         "needs --max_steps", out / "i"),
        ("run_mlm: restoring callback states", [*mlm, *text, "--time_budget", "5s", "--restore_callback_states_from_checkpoint",
                                                "true", *o("j")], "would replace the budget", out / "j"),
        ("run_mlm: resume with no checkpoint", [*mlm, *text, "--time_budget", "5s", "--resume_from_checkpoint", "true", *o("k")],
         "no complete checkpoint", out / "k"),
        ("run_mlm: masking probability out of range", [*mlm, *text, "--time_budget", "5s", "--mlm_probability", "1.5", *o("l")],
         "--mlm_probability 1.5", out / "l"),
        ("run_classification: model folder missing", [*tune, "--model_name_or_path", str(work / "nowhere"), *files, *o("m")],
         "no such folder", out / "m"),
        ("run_classification: label column absent", [*tune, "--model_name_or_path", str(fixtures["pretrained"]), *files,
                                                     "--label_column", "stars", *o("n")], "--label_column", out / "n"),
        ("run_classification: validation file without rows", [*tune, "--model_name_or_path", str(fixtures["pretrained"]),
                                                              "--train_file", str(fixtures["train"]), "--validation_file",
                                                              str(data / "header_only.tsv"), *o("p")], "has no rows", out / "p"),
        ("run_classification: preempted pretraining", [*tune, "--model_name_or_path", str(preempted), *files, *o("q")],
         "preempted at step 9", out / "q"),
        ("run_classification: not a GLUE task", [*tune, "--model_name_or_path", str(fixtures["pretrained"]), "--task_name",
                                                 "xnli", *o("r")], "not a GLUE classification task", out / "r"),
        ("compress: sparsity 1.0", [*compress, "--model_name_or_path", str(fixtures["finetuned"]), "--sparsities", "0,1.0",
                                    *o("s")], "must be in [0, 1)", out / "s"),
        ("compress: sparsity not a number", [*compress, "--model_name_or_path", str(fixtures["finetuned"]), "--sparsities",
                                             "half", *o("t")], "is not a number", out / "t"),
        ("compress: unknown quantization", [*compress, "--model_name_or_path", str(fixtures["finetuned"]), "--quantization",
                                            "int3", *o("u")], "unknown quantization method", out / "u"),
        ("compress: model without a head", [*compress, "--model_name_or_path", str(fixtures["pretrained"]), *o("v")],
         "has no classification head", out / "v"),
        ("compress: model folder missing", [*compress, "--model_name_or_path", str(work / "nowhere"), *o("w")],
         "no such folder", out / "w"),
        ("release: folder without records", [*release, "--compression_dirs", str(fixtures["finetuned"]), "--dry_run",
                                             "--hub_organization", "org", *card, *o("x")], "missing record", out / "x"),
        ("release: invalid repo id", [*release, "--variants", variant, "--dry_run", "--hub_organization", "my org", *card,
                                      *o("y")], "invalid repo id", out / "y"),
        ("release: no token", [*release, "--variants", variant, "--hub_organization", "org", *card, *o("z")],
         "no Hugging Face token", out / "z"),
        ("release: local data without a card dataset", [*release, "--variants", variant, "--dry_run", "--hub_organization",
                                                        "org", *o("aa")], "--card_dataset", out / "aa"),
        ("study: config missing", [*study, "--config", str(data / "missing.yaml")], "does not exist", out / "study_missing"),
        ("study: config that does not parse", [*study, "--config", str(data / "study_bad.yaml")], "does not parse",
         out / "study_bad"),
        ("study: unknown key", [*study, "--config", str(data / "study_unknown.yaml")], "unknown keys", out / "study_unknown"),
        ("study: unknown size", [*study, "--config", str(data / "study_size.yaml")], "unknown model size", out / "study_size"),
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
    env = {key: value for key, value in os.environ.items() if key != "HF_TOKEN"}
    env.update(HF_HOME=str(work / "hf-home-without-token"), HF_HUB_OFFLINE="1")
    cases = bad_inputs(work, fixtures)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # each case is a process that starts, checks, exits
        outcomes = list(pool.map(lambda case: check_bad_input(case[1], case[2], case[3], work / "bad-out", env), cases))
    results = [(name, ok, line) for (name, *_), (ok, line) in zip(cases, outcomes)]
    held = sum(ok for _, ok, _ in results)
    failed = [f"{name}: {line}" for name, ok, line in results if not ok]
    recipes = sorted({name.split(":")[0] for name, _, _ in results})
    return [Row(f"bad input across {', '.join(recipes)}: one `error:` line naming the fix, exit 2, nothing left behind",
                len(results), held, "; ".join(failed) or f"{len(results)} distinct cases")], results


def hub_faults(work: Path, fixtures: dict) -> list[Row]:
    from tests.hub_server import TOKEN, FakeHub

    variant = str(fixtures["compressed"] / "dense-fp32")
    cases = [("5xx on every commit", dict(fail_commits=10), "down"), ("429 twice, then accepted", dict(fail_commits=2, fail_status=429), "up"),
             ("connection dropped after the commit landed", dict(drop_commits=1), "up"),
             ("connection dropped before the commit", dict(drop_before_commit=1), "up")]
    held, notes = 0, []
    for index, (what, faults, expect) in enumerate(cases):
        with FakeHub() as hub:
            for key, value in faults.items():
                setattr(hub, key, value)
            out = work / f"hub-{index}"
            env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(work / "hf-hub")}
            done = subprocess.run([sys.executable, str(RECIPES / "release.py"), "--variants", variant, "--hub_organization",
                                   "org", "--card_dataset", "stanfordnlp/sst2", "--output_dir", str(out)],
                                  capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
            report = json.loads((out / "release.json").read_text()) if (out / "release.json").exists() else []
            reported = {entry["repo_id"] for entry in report if entry["status"] in ("created", "updated", "unchanged")}
            on_hub = {name for name, state in hub.repos.items() if "README.md" in state["files"]}
            commits = {name: len(state["commits"]) for name, state in hub.repos.items()}
            ok = reported == on_hub and (TOKEN not in done.stdout + done.stderr)
            pushed_once = bool(commits) and all(count == 2 for count in commits.values())  # the repo's creation, then ours
            ok &= (done.returncode != 0 and not on_hub) if expect == "down" else (done.returncode == 0 and pushed_once)
            held += int(ok)
            if not ok:
                notes.append(f"{what}: exit {done.returncode}, reported {sorted(reported)}, on the Hub {sorted(on_hub)}")
    return [Row("Hub push under faults (" + "; ".join(what for what, _, _ in cases) + "): reported pushed = on the Hub, "
                "one commit per repo", len(cases), held, "; ".join(notes) or "release.json matched the Hub every time")]


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="ddp,sigkill,sigterm,bad_input,hub")
    parser.add_argument("--ddp_runs", type=int, default=20)
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
        if "sigkill" in sections:
            rows += sigkill_resume(work, fixtures, args.kill_runs, args.seed)
        if "sigterm" in sections:
            rows += sigterm(work, fixtures, args.term_runs)
        if "bad_input" in sections:
            bad_rows, cases = bad_input_rows(work, fixtures)
            rows += bad_rows
            for name, ok, line in cases:
                print(f"  {'held' if ok else 'FAILED':>6}  {name}: {line}")
        if "hub" in sections:
            rows += hub_faults(work, fixtures)
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
