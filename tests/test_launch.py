"""hf-tbc-launch, and recipes under a launcher that a scheduler signals alone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.fault_matrix import command_lines
from hf_tbc.budget import PREEMPTED_EXIT_CODE
from hf_tbc.launch import SignalForwarder, exit_code
from tests.conftest import REPO
from tests.conftest import TINY_MLM as TINY

RECIPE = str(REPO / "recipes" / "run_mlm.py")
LAUNCH = [sys.executable, "-m", "hf_tbc.launch"]
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
ONE = ["--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
# --main_process_port 0: a free port, so that two DDP runs of a parallel test session do not collide on 29500
TWO = "--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no".split()
TWO += ["--main_process_port", "0"]


def test_a_death_by_signal_reads_as_a_shell_reports_it():
    assert exit_code(-signal.SIGTERM) == PREEMPTED_EXIT_CODE == 143 and exit_code(2) == 2 and exit_code(0) == 0


CHILD = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (open(sys.argv[1], "w").write("saved"), sys.exit(143)))
open(sys.argv[1] + ".ready", "w").write("")
time.sleep(60)
"""


def test_the_forwarder_passes_sigterm_to_the_children_and_lets_the_launcher_wait(tmp_path):
    marker = tmp_path / "child"
    forwarder = SignalForwarder().install()
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(marker)])
        while not Path(str(marker) + ".ready").exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # the scheduler signals the launcher (this process) alone
        assert child.wait(timeout=30) == 143  # the launcher went on waiting for the child, which saved
        assert marker.read_text() == "saved" and forwarder.received == signal.SIGTERM
    finally:
        forwarder.restore()
    assert signal.getsignal(signal.SIGTERM) is not forwarder._forward


SLOW_SAVE = """
import signal, sys, time
def save(*_):
    time.sleep(8)  # a checkpoint that takes longer than accelerate's 5 s between SIGTERM and SIGKILL (1.16 on)
    open(sys.argv[1], "w").write("saved")
    sys.exit(143)
signal.signal(signal.SIGTERM, save)
open(sys.argv[1] + ".ready", "w").write("")
time.sleep(60)
"""


def test_hf_tbc_launch_with_one_process_waits_for_a_slow_checkpoint(tmp_path):
    """SIGTERM to the launcher alone reaches the training process, and the launcher waits for its save however long
    it takes (the scheduler's grace period is the limit), then exits with the process's 143."""
    marker, script = tmp_path / "child", tmp_path / "slow_save.py"
    script.write_text(SLOW_SAVE)
    process = subprocess.Popen([*LAUNCH, *ONE, str(script), str(marker)], start_new_session=True)
    deadline = time.monotonic() + 120
    while not Path(str(marker) + ".ready").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == PREEMPTED_EXIT_CODE
    assert marker.read_text() == "saved"


@pytest.mark.parametrize("launcher", ["hf-tbc-launch", "hf-tbc-launch 2 processes", "accelerate launch -q"])
def test_bad_input_under_a_launcher_is_one_line_and_no_traceback(tmp_path, launcher):
    command = {
        "hf-tbc-launch": [*LAUNCH, *ONE],
        "hf-tbc-launch 2 processes": [*LAUNCH, *TWO],
        "accelerate launch -q": [*ACCELERATE, "-q", *ONE],
    }[launcher]
    out = tmp_path / "out"
    done = subprocess.run(
        [
            *command,
            RECIPE,
            "--train_file",
            str(tmp_path / "missing.txt"),
            "--time_budget",
            "5s",
            "--output_dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    processes = 2 if "2 processes" in launcher else 1
    # The rank that fails first prints its line; torch's elastic agent then stops the others, and each prints the
    # same line only if it reached the check before that (a matter of timing on a busy machine).
    assert 1 <= len(errors) <= processes and set(errors) == {errors[0]}, done.stderr[-3000:]
    assert "missing.txt does not exist" in errors[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "CalledProcessError" not in done.stderr
    assert done.returncode == (1 if "accelerate" in launcher else 2)  # accelerate turns every failure into 1
    assert not out.exists()


def _signal_the_launcher_alone(command: list[str], out: Path, timeout: float = 240) -> int:
    """Starts ``command`` in its own session, waits for a checkpoint and a few more steps, sends SIGTERM to the
    launcher's process only (not its group, as Kubernetes does to PID 1) and returns its exit code."""
    log = out.parent / "launcher.log"  # a file, not a pipe: an orphaned child goes on writing to it
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not list(out.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


def _no_orphan(out: Path, wait: float = 60) -> bool:
    """No process training into ``out`` is left (the budget would keep one alive for minutes)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if str(out) not in command_lines():
            return True
        time.sleep(0.5)
    return False


def _preempted(out: Path) -> dict:
    record = json.loads((out / "run_summary.json").read_text())
    assert record["stop_reason"] == "preempted" and record["model_saved"] is False, record
    assert (Path(record["checkpoint"]) / "trainer_state.json").is_file()
    return record


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_to_hf_tbc_launch_alone_saves_exits_143_and_resumes(tmp_path, processes):
    out = tmp_path / "run"
    launcher = [
        *LAUNCH,
        *(ONE if processes == 1 else TWO),
        RECIPE,
        *TINY,
        "--save_every",
        "2s",
        "--output_dir",
        str(out),
    ]
    code = _signal_the_launcher_alone([*launcher, "--time_budget", "5m"], out)
    assert code == PREEMPTED_EXIT_CODE
    assert _no_orphan(out)
    record = _preempted(out)
    resumed = subprocess.run(
        [*launcher, "--time_budget", "4s", "--resume_from_checkpoint", "true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finished = json.loads((out / "run_summary.json").read_text())
    assert finished["resumed_from"] == record["checkpoint"] and finished["stop_reason"] == "time_budget"


@pytest.mark.slow
def test_a_recipe_whose_plain_accelerate_launcher_is_killed_saves_and_stops_instead_of_training_on(tmp_path):
    """accelerate launch with one process, signalled alone, either dies at once without telling its child
    (accelerate up to 1.15: the child learns it from the kernel, PR_SET_PDEATHSIG) or forwards SIGTERM and exits
    143 (1.16 on). Either way the child checkpoints and stops instead of training on, orphaned, to its budget."""
    out = tmp_path / "run"
    code = _signal_the_launcher_alone(
        [*ACCELERATE, *ONE, RECIPE, *TINY, "--time_budget", "5m", "--save_every", "2s", "--output_dir", str(out)], out
    )
    assert code in (-signal.SIGTERM, PREEMPTED_EXIT_CODE)  # killed by the signal, or its own 128 + 15
    assert _no_orphan(out)
    _preempted(out)


def test_hf_tbc_launch_has_accelerates_flags_and_help():
    done = subprocess.run([*LAUNCH, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: hf-tbc-launch")
    assert "--num_processes" in done.stdout and "--multi_gpu" in done.stdout and "scheduler" in done.stdout


NOHUP = """
import os, sys, time
from hf_tbc.launch import stop_with_parent
stop_with_parent()
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(3)  # the shell that started it exits meanwhile
open(sys.argv[1] + ".done", "w").write("outlived its parent")
"""


@pytest.mark.parametrize("launched", [False, True])
def test_only_a_run_under_a_launcher_stops_with_its_parent(tmp_path, launched):
    """`nohup python recipes/run_mlm.py ... &` must outlive the shell that started it; a run under accelerate
    launch (which sets ACCELERATE_MIXED_PRECISION) must not outlive its launcher."""
    marker, done = tmp_path / "pid", tmp_path / "pid.done"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID")
    }
    if launched:
        env["ACCELERATE_MIXED_PRECISION"] = "no"
    script = tmp_path / "child.py"
    script.write_text(NOHUP)
    # the shell starts the run in the background and exits as soon as the run is going, leaving it behind
    shell = f"{sys.executable} {script} {marker} & while [ ! -f {marker} ]; do sleep 0.05; done"
    subprocess.run(["bash", "-c", shell], env=env, timeout=120, cwd=REPO)
    pid, deadline = int(marker.read_text()), time.monotonic() + 30
    while not done.exists() and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)  # a last write in flight
    assert done.exists() is not launched


@pytest.mark.parametrize(
    "environment, threads, expected",
    [
        ({"ACCELERATE_MIXED_PRECISION": "no", "OMP_NUM_THREADS": "1"}, 1, 4),  # plain accelerate launch, no GPU
        ({"ACCELERATE_MIXED_PRECISION": "no", "OMP_NUM_THREADS": "2"}, 2, None),  # a thread count was asked for
        ({"ACCELERATE_MIXED_PRECISION": "no", "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2"}, 1, None),  # shared cores
        ({"OMP_NUM_THREADS": "1"}, 1, None),  # no launcher: the user's own environment
    ],
)
def test_a_one_process_cpu_run_of_accelerate_launch_uses_every_core(monkeypatch, environment, threads, expected):
    import torch

    from hf_tbc import launch

    for name in ("ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID", "OMP_NUM_THREADS", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    asked = []
    monkeypatch.setattr(launch, "available_cores", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(torch, "set_num_threads", asked.append)
    assert launch.use_every_core() == expected
    assert asked == ([expected] if expected else [])


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["accelerate launch", "hf-tbc-launch"])
def test_the_users_command_and_the_scheduler_launcher_each_run_a_recipe_on_every_core(tmp_path, launcher):
    from hf_tbc.launch import available_cores

    out = tmp_path / "run"
    command = {
        "accelerate launch": [*ACCELERATE, *ONE[1:]],  # as a user types it: no --cpu, so OMP_NUM_THREADS=1
        "hf-tbc-launch": [*LAUNCH, *ONE],
    }[launcher]
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(f"line {i} of a small corpus with some words in it" for i in range(400)) + "\n")
    environment = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    done = subprocess.run(
        [*command, RECIPE, *TINY, "--train_file", str(corpus), "--time_budget", "3s", "--output_dir", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "run_summary.json").read_text())
    assert record["stop_reason"] == "time_budget" and record["steps"] > 0
    if launcher == "accelerate launch":  # the recipe took every core the launcher left it without
        assert record["hardware"]["torch_threads"] == available_cores()
    else:  # accelerate's --cpu gives each process the physical cores
        assert record["hardware"]["torch_threads"] >= min(2, available_cores())
