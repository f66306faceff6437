#!/usr/bin/env python
"""Two nodes on one machine: ``hf-tbc-launch --multi_gpu --num_machines 2 --machine_rank {0,1}`` over loopback, one
CPU process per node, the way a two-machine job starts (each node its own launcher, its own caches and temporary
folder; the output folder shared, as on a cluster's shared file system).

    python benchmarks/two_nodes.py --runs 20          # stop agreement, then SIGTERM to one node and the resume

Sections (rows of the fault matrix too: ``benchmarks/fault_matrix.py --sections two_nodes``):
- stop: ``--runs`` budgeted runs. Held when both nodes exit 0, the record says world size 2, both ranks stopped at
  the same step, and the first logged loss is a fresh model's (about ln of the vocabulary, not twice it).
- sigterm: SIGTERM to node 1's launcher alone (a scheduler preempting one machine) during training. Held when both
  nodes exit 143, the record says preempted with a complete checkpoint, and ``--resume_from_checkpoint true`` on
  both nodes finishes the budget, the two ranks again stopping together.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "run_mlm.py"
TINY = (
    "--model_size L2-H32 --vocab_size 500 --block_size 32 --per_device_train_batch_size 8 --logging_steps 1 "
    "--disable_tqdm true --dataloader_num_workers 0"
).split()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_command(rank: int, port: int, arguments: list[str]) -> list[str]:
    launcher = [sys.executable, "-m", "hf_tbc.launch", "--multi_gpu", "--num_machines", "2", "--num_processes", "2"]
    launcher += ["--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
    launcher += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launcher, str(RECIPE), *arguments]


def start_nodes(work: Path, name: str, arguments: list[str]) -> list[subprocess.Popen]:
    """Both nodes of one job, each with node-local caches and temporary folder, logging to ``work/name-N.log``."""
    port = free_port()
    nodes = []
    for rank in (0, 1):
        local = work / f"node-{rank}"
        (local / "tmp").mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "HF_TBC_CACHE": str(local / "hf_tbc"),
            "HF_DATASETS_CACHE": str(local / "datasets"),
            "TMPDIR": str(local / "tmp"),
            "OMP_NUM_THREADS": "1",
        }
        log = (work / f"{name}-{rank}.log").open("w")
        nodes.append(
            subprocess.Popen(
                node_command(rank, port, arguments),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
                cwd=REPO,
            )
        )
    return nodes


def wait_all(nodes: list[subprocess.Popen], timeout: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for node in nodes:
        try:
            codes.append(node.wait(timeout=max(deadline - time.monotonic(), 1)))
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            codes.append(node.wait())
    return codes


def summary(out: Path) -> dict:
    path = out / "run_summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def first_loss(out: Path) -> float:
    """The first training loss the run logged: a fresh model's is about ln(vocabulary), not the world size times it."""
    for line in (out / "curve.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("loss") is not None:
            return row["loss"]
    return math.nan


def stop_agreement(work: Path, text: Path, runs: int) -> tuple[int, str]:
    held, stops, notes, firsts = 0, [], [], []
    for index in range(runs):
        out = work / f"stop-{index}"
        arguments = [*TINY, "--train_file", str(text), "--time_budget", "6s", "--output_dir", str(out)]
        codes = wait_all(start_nodes(work, out.name, arguments))
        record = summary(out)
        ranks = record.get("stop_step_per_rank", [])
        first = first_loss(out) if (out / "curve.jsonl").exists() else math.nan
        firsts.append(first)
        ok = codes == [0, 0] and record.get("world_size") == 2 and len(ranks) == 2 and len(set(ranks)) == 1
        ok = ok and abs(first - math.log(500)) < 0.5  # the tokenizer's 500 tokens: a mean loss, not a sum over ranks
        held += int(ok)
        if ranks:
            stops.append(ranks[0])
        if not ok:
            notes.append(f"run {index}: exits {codes}, stop steps {ranks}")
    detail = f"stop steps {min(stops)}–{max(stops)}, the same on both ranks" if stops else "no run finished"
    detail += f"; first logged loss {min(firsts):.2f}–{max(firsts):.2f} (ln 500 = {math.log(500):.2f})"
    return held, "; ".join([detail, *notes])


def sigterm_one_node(work: Path, text: Path, runs: int) -> tuple[int, str]:
    held, notes, steps = 0, [], []
    for index in range(runs):
        out = work / f"term-{index}"
        arguments = [*TINY, "--train_file", str(text), "--output_dir", str(out), "--save_every", "2s"]
        nodes = start_nodes(work, out.name, [*arguments, "--time_budget", "5m"])
        deadline = time.monotonic() + 240
        while not (out / "curve.jsonl").exists() and time.monotonic() < deadline and nodes[1].poll() is None:
            time.sleep(0.2)
        time.sleep(3)
        nodes[1].send_signal(signal.SIGTERM)  # node 1's launcher alone, as its scheduler would
        codes = wait_all(nodes)
        record = summary(out)
        checkpoint = record.get("checkpoint")
        preempted = record.get("stop_reason") == "preempted" and bool(checkpoint)
        complete = preempted and (Path(checkpoint) / "trainer_state.json").is_file()
        resumed = wait_all(
            start_nodes(
                work, f"{out.name}-resume", [*arguments, "--time_budget", "8s", "--resume_from_checkpoint", "true"]
            )
        )
        final = summary(out)
        ranks = final.get("stop_step_per_rank", [])
        ok = (
            codes == [143, 143]
            and complete
            and resumed == [0, 0]
            and final.get("stop_reason") == "time_budget"
            and len(set(ranks)) == 1
            and final.get("resumed_from") == checkpoint
        )
        held += int(ok)
        if ok:
            steps.append(f"{record.get('steps')}→{final.get('steps')}")
        else:
            notes.append(
                f"run {index}: exits {codes}, record {record.get('stop_reason')}, checkpoint complete {complete}, "
                f"resume exits {resumed}, final {final.get('stop_reason')} at {ranks}"
            )
    detail = f"both nodes exit 143, then resume (steps {', '.join(steps)})" if steps else "none held"
    return held, "; ".join([detail, *notes])


def two_node_rows(work: Path, text: Path, runs: int, term_runs: int) -> list[tuple[str, int, int, str]]:
    """The two sections as rows (fault, runs, held, detail), for this script's table and the fault matrix's."""
    return [
        ("two nodes over loopback, 6 s budget: both exit 0, world size 2, one stop step", runs)
        + stop_agreement(work, text, runs),
        ("SIGTERM to one node's launcher: both save and exit 143; the resume on both finishes", term_runs)
        + sigterm_one_node(work, text, term_runs),
    ]


def corpus(work: Path) -> Path:
    from hf_tbc.tasks.mlm.corpus import default_corpus

    text = work / "text.txt"
    text.write_text("\n".join(default_corpus().read_text().splitlines()[:3000]) + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="budgeted runs for the stop agreement")
    parser.add_argument("--term_runs", type=int, default=2, help="runs of SIGTERM to one node, then the resume")
    args = parser.parse_args()
    from hf_tbc.hardware import cpu_info

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hf-tbc-two-nodes-") as scratch:
        work = Path(scratch)
        rows = two_node_rows(work, corpus(work), args.runs, args.term_runs)
    print(f"\nTwo nodes on {cpu_info().model}, {os.cpu_count()} cores, {time.monotonic() - started:.0f} s\n")
    print("| fault | runs | held | detail |\n|---|---|---|---|")
    for fault, runs, held, detail in rows:
        print(f"| {fault} | {runs} | {held} | {detail} |")
    sys.exit(0 if all(held == runs for _, runs, held, _ in rows) else 1)


if __name__ == "__main__":
    main()
