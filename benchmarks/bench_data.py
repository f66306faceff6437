#!/usr/bin/env python
"""A gigabyte corpus, streamed against map-style: time to the first training step and peak memory, side by side.

Builds a local text corpus of ``--size_gb`` gigabytes from local text (the built-in corpus's paragraphs, reshuffled
in every copy, so its tokenization costs what real English costs; the words repeat, which no step here depends on),
then runs ``recipes/run_mlm.py`` on it twice, one after the other, each with empty datasets and hf-tbc caches (the
tokenizer is trained, the corpus read, as on a first run):

- ``map-style``: the default, every text tokenized and packed into the datasets cache before training starts
  (``--preprocessing_num_workers`` default: every core);
- ``streaming``: ``--streaming true``, text tokenized and packed as training reads it.

Each run trains ``--time_budget`` once started. Prints, per mode: seconds from launch to the first training step
(the first row of ``curve.jsonl``: imports, reading, tokenizer training, packing, model), the peak resident memory
of the run's whole process tree (sampled every 0.2 s), the steps it then made, and the ratios.

    python benchmarks/bench_data.py --size_gb 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def build_corpus(path: Path, size_bytes: int, seed: int = 0) -> Path:
    """``path``, a text file of at least ``size_bytes`` bytes, one paragraph per line; reused when it is big enough."""
    if path.exists() and path.stat().st_size >= size_bytes:
        return path
    from hf_tbc.tasks.mlm.corpus import default_corpus

    paragraphs = default_corpus().read_text(encoding="utf-8").splitlines()
    generator = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    written = 0
    with open(scratch, "w", encoding="utf-8") as handle:
        while written < size_bytes:
            generator.shuffle(paragraphs)
            chunk = "\n".join(paragraphs) + "\n"
            handle.write(chunk)
            written += len(chunk.encode("utf-8"))
    os.replace(scratch, path)
    return path


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its descendants (tokenization workers included)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_mode(mode: str, corpus: Path, args, scratch: Path) -> dict:
    out = scratch / mode
    environment = {
        **os.environ,
        "HF_DATASETS_CACHE": str(scratch / f"datasets-{mode}"),
        "HF_TBC_CACHE": str(scratch / f"hf_tbc-{mode}"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable,
        str(REPO / "recipes" / "run_mlm.py"),
        "--model_size",
        args.model_size,
        "--train_file",
        str(corpus),
        "--time_budget",
        args.time_budget,
        "--output_dir",
        str(out),
        "--logging_steps",
        "1",
        "--disable_tqdm",
        "true",
        "--save_strategy",
        "no",
    ]
    if mode == "streaming":
        command += ["--streaming", "true"]
    started = time.monotonic()
    log = open(scratch / f"{mode}.log", "w")
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    process = psutil.Process(child.pid)
    peak, first_step = 0, None
    while child.poll() is None:
        peak = max(peak, tree_rss(process))
        if first_step is None and (out / "curve.jsonl").exists() and (out / "curve.jsonl").stat().st_size > 0:
            first_step = time.monotonic() - started
        time.sleep(0.2)
    log.close()
    if child.returncode != 0:
        tail = (scratch / f"{mode}.log").read_text()[-3000:]
        raise SystemExit(f"error: the {mode} run failed (exit {child.returncode}):\n{tail}")
    record = json.loads((out / "run_summary.json").read_text())
    return {
        "first_step_s": first_step,
        "peak_rss_gb": peak / 1e9,
        "steps": record["steps"],
        "total_s": time.monotonic() - started,
        "unigram_loss": record["unigram_loss"],
        "final_eval_loss": record["final_eval_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size_gb", type=float, default=1.0)
    parser.add_argument("--corpus", default=str(Path(tempfile.gettempdir()) / "hf_tbc_bench_data" / "corpus.txt"))
    parser.add_argument("--model_size", default="L2-H128")
    parser.add_argument("--time_budget", default="30s", help="training budget of each run once it has started")
    parser.add_argument("--modes", default="streaming,map-style")
    args = parser.parse_args()

    from hf_tbc.hardware import hardware_summary

    hardware = hardware_summary()
    print(
        f"hardware: {hardware['cpu']}, {hardware['cpu_count']} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    )
    start = time.monotonic()
    corpus = build_corpus(Path(args.corpus), int(args.size_gb * 1e9))
    print(
        f"corpus: {corpus} ({corpus.stat().st_size / 1e9:.2f} GB, built or found in {time.monotonic() - start:.0f} s)"
    )
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for mode in args.modes.split(","):
            results[mode] = run_mode(mode, corpus, args, Path(scratch))
            row = results[mode]
            print(
                f"{mode:>10}: first step after {row['first_step_s']:.1f} s, peak memory {row['peak_rss_gb']:.2f} GB "
                f"(process tree), {row['steps']} steps in the {args.time_budget} budget, eval loss "
                f"{row['final_eval_loss']:.3f} (unigram {row['unigram_loss']:.3f})",
                flush=True,
            )
            shutil.rmtree(Path(scratch) / f"datasets-{mode}", ignore_errors=True)
    if {"streaming", "map-style"} <= results.keys():
        stream, mapped = results["streaming"], results["map-style"]
        print(
            f"map-style / streaming: time to the first step {mapped['first_step_s'] / stream['first_step_s']:.1f}x, "
            f"peak memory {mapped['peak_rss_gb'] / stream['peak_rss_gb']:.2f}x"
        )


if __name__ == "__main__":
    main()
