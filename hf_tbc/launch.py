"""``hf-tbc-launch``: ``accelerate launch`` (same flags, same config file) for runs that a scheduler may stop.

    hf-tbc-launch --cpu --num_processes 1 recipes/run_mlm.py --time_budget 2h --output_dir runs/L4-H256
    hf-tbc-launch --multi_gpu --num_processes 8 recipes/run_mlm.py --model_size L12-H768 --time_budget 2h ...

Plain ``accelerate launch`` runs every recipe, but a scheduler meets three gaps in it:

- **Signals.** Signalled alone (a Kubernetes pod's PID 1, ``kill`` of the job's main process), its one-process
  launcher dies at once without telling the training process (accelerate up to 1.15) or forwards SIGTERM and
  kills the process tree 5 seconds later (1.16 on), which cuts short any checkpoint that takes longer to write.
  ``hf-tbc-launch`` runs that process itself, forwards SIGTERM and waits while it checkpoints, for as long as the
  scheduler's grace period allows. With several processes torch's elastic agent forwards the signal and waits
  ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` seconds (torch's default 30) before SIGKILL; ``hf-tbc-launch`` sets that to
  :data:`SHUTDOWN_TIMEOUT` unless it is set.
- **Exit codes.** ``accelerate launch`` turns every failure into 1; here the recipe's own code comes through:
  0 done, 2 bad input, 143 preempted (checkpoint written: resume), 1 anything else.
- **Noise.** A recipe's one-line ``error:`` is not followed by the launcher's traceback.

Recipes also stop cleanly when their launcher dies without a word (SIGKILL, or plain ``accelerate launch``
signalled alone): :func:`stop_with_parent` makes the kernel send them SIGTERM then.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from typing import Optional, Sequence

SHUTDOWN_TIMEOUT = 300  # seconds the elastic agent waits for checkpointing workers after forwarding a signal
_PR_SET_PDEATHSIG = 1


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it: a death by signal N (Popen's -N) is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class SignalForwarder:
    """Forwards SIGTERM received by the launcher to its child processes (the training processes), once each time
    it arrives, and lets the launcher go on waiting for them."""

    def __init__(self):
        self.received: Optional[int] = None
        self._previous = None

    def install(self) -> "SignalForwarder":
        self._previous = signal.signal(signal.SIGTERM, self._forward)
        return self

    def _forward(self, signum, frame) -> None:
        import psutil

        self.received = signum
        children = psutil.Process().children()
        if not children:  # nothing started yet: nothing to checkpoint
            raise SystemExit(exit_code(-signum))
        for child in children:
            try:
                child.send_signal(signum)
            except psutil.NoSuchProcess:
                pass

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


LAUNCHER_VARIABLES = ("ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID")  # set by accelerate's and torch's launchers


# how a launcher's command line starts, as an interpreter runs it (``python -m ...`` or ``python /venv/bin/...``),
# and how a user types it
_LAUNCHER_NAMES = {
    "accelerate": ["accelerate"],
    "accelerate.commands.launch": ["accelerate", "launch"],
    "accelerate.commands.accelerate_cli": ["accelerate"],
    "hf-tbc-launch": ["hf-tbc-launch"],
    "hf_tbc.launch": ["hf-tbc-launch"],
    "torchrun": ["torchrun"],
    "torch.distributed.run": ["torchrun"],
}


def launcher_prefix(cmdline: Sequence[str], script: str) -> Optional[list[str]]:
    """The launcher part of a launcher's command line ``cmdline``, as a user types it: what comes before the
    recipe ``script``, its program named as on a shell (``accelerate launch --cpu --num_processes 1``,
    ``hf-tbc-launch --multi_gpu ...``, ``torchrun ...``). ``None`` when ``cmdline`` is no known launcher's or does
    not run ``script``."""
    words = list(cmdline)
    names = [os.path.basename(word) for word in words]
    recipe = os.path.basename(script)
    if recipe not in names:
        return None
    words = words[: names.index(recipe)]
    if words and os.path.basename(words[0]).startswith("python"):  # the interpreter running a script or module
        words = words[1:]
        if words[:1] == ["-m"]:
            words = words[1:]
    if not words:
        return None
    program = _LAUNCHER_NAMES.get(os.path.basename(words[0]))
    if program is None:
        return None
    rest = words[1:]
    if program == ["accelerate"] and rest[:1] == ["launch"]:
        program, rest = ["accelerate", "launch"], rest[1:]
    return program + rest if program != ["accelerate"] else None


def launcher_command() -> Optional[list[str]]:
    """The launcher that started this process, as :func:`launcher_prefix` reads its command line (the parent's:
    accelerate's and torch's launchers start the training processes themselves), or ``None``."""
    if not any(name in os.environ for name in LAUNCHER_VARIABLES):
        return None
    try:
        import psutil

        return launcher_prefix(psutil.Process(os.getppid()).cmdline(), sys.argv[0])
    except Exception:  # noqa: BLE001 - no process table to read: the caller falls back to a plain launcher
        return None


def stop_with_parent() -> None:
    """Asks Linux to send this process SIGTERM when the launcher that started it exits (``PR_SET_PDEATHSIG``), so a
    run whose launcher was killed checkpoints and stops as on preemption instead of training on orphaned.

    Only under a launcher (``accelerate launch``, ``hf-tbc-launch``, ``torchrun``, told apart by the variables they
    set): a run started from a shell with ``nohup ... &`` must outlive that shell. A no-op off Linux; if the
    launcher is already gone, the process ends at once (it has trained nothing yet)."""
    if not sys.platform.startswith("linux") or not any(name in os.environ for name in LAUNCHER_VARIABLES):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before the request: nobody will signal it now
        os.kill(os.getpid(), signal.SIGTERM)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: ``taskset`` and container limits narrow it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def use_every_core() -> Optional[int]:
    """Gives torch every core of the machine in a one-process CPU run that ``accelerate launch`` started with one
    thread, and returns the new thread count (``None`` when nothing changed).

    Without ``--cpu`` accelerate's launcher exports ``OMP_NUM_THREADS=1`` on a machine without a GPU, so the plain
    ``accelerate launch recipes/run_mlm.py`` a user types would train on one core of many. Only that case changes:
    several processes share the cores as the launcher decided, a GPU run needs no CPU threads, and any other
    thread count was asked for. To hold a run to fewer cores, narrow its affinity (``taskset -c 0 accelerate
    launch ...``)."""
    import torch

    if not any(name in os.environ for name in LAUNCHER_VARIABLES) or os.environ.get("OMP_NUM_THREADS") != "1":
        return None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or torch.cuda.is_available() or torch.get_num_threads() != 1:
        return None
    cores = available_cores()
    if cores <= 1:
        return None
    torch.set_num_threads(cores)
    return cores


def _quiet_elastic_agent() -> None:
    """Silences the elastic agent's own failure report: the worker that fails first prints its error (one line, or
    its traceback); the agent then stops the others, so the same line shows once or once per worker."""
    import torch.distributed.run  # noqa: F401 (creates the agent's loggers, each with its own level)

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _simple_launcher(args) -> None:
    """accelerate's one-process launcher (same command and environment) without a SIGTERM handler of its own, so
    the :class:`SignalForwarder` installed by :func:`launch` stays in charge and nothing kills the process while it
    checkpoints. Raises ``CalledProcessError`` on a non-zero exit, as accelerate's does."""
    from accelerate.utils import prepare_simple_launcher_cmd_env

    command, environment = prepare_simple_launcher_cmd_env(args)
    process = subprocess.Popen(command, env=environment)
    process.wait()  # a forwarded SIGTERM interrupts the wait only for the handler; the wait then goes on
    if process.returncode != 0:
        raise subprocess.CalledProcessError(returncode=process.returncode, cmd=command)


def launch(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``accelerate launch`` with ``argv`` and returns the exit code of the training processes."""
    import accelerate.commands.launch as accelerate_launch
    from accelerate.commands.launch import launch_command, launch_command_parser

    parser = launch_command_parser()
    parser.prog = "hf-tbc-launch"
    parser.description = __doc__.split("\n\n")[0] + " " + (parser.description or "")
    args = parser.parse_args(argv)
    args.quiet = False  # accelerate's quiet mode turns every failure into 1: the code is read here instead
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_TIMEOUT))
    _quiet_elastic_agent()
    forwarder = SignalForwarder().install()
    simple_launcher, accelerate_launch.simple_launcher = accelerate_launch.simple_launcher, _simple_launcher
    try:
        launch_command(args)
    except subprocess.CalledProcessError as error:  # one process (accelerate's simple launcher)
        return exit_code(error.returncode)
    except Exception as error:  # several processes: torch's elastic agent
        from torch.distributed.elastic.multiprocessing.api import SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

        if isinstance(error, SignalException):
            return exit_code(-int(error.sigval))
        if isinstance(error, ChildFailedError):
            return exit_code(error.get_first_failure()[1].exitcode)
        raise
    finally:
        accelerate_launch.simple_launcher = simple_launcher
        forwarder.restore()
    return 0


def main() -> None:
    sys.exit(launch())


if __name__ == "__main__":
    main()
