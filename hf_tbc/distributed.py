"""The ranks of a run waiting for one of them without a deadline: preparation that may take longer than any collective's
timeout (tokenizing a large corpus) happens on each node's main process while the others wait on a file.

``TrainingArguments.main_process_first`` makes the other ranks wait at a barrier, which fails after ``ddp_timeout``
(30 minutes by default): on a corpus of gigabytes rank 0 may still be tokenizing then, and the whole run dies. Here the
ranks meet at one barrier first, at once (all are alive, nobody is busy), then the waiting ranks poll a marker file
that the node's main process writes when it is done, or writes with its error when it failed, so that they stop too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from transformers.utils import logging

from .errors import UsageError

logger = logging.get_logger(__name__)

POLL_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0


def marker_path(key: str) -> Path:
    """The node-local file through which a node's main process tells its other ranks that ``key`` is prepared."""
    digest = hashlib.sha256(f"{key}|{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}".encode())
    return Path(tempfile.gettempdir()) / f"hf_tbc-prepared-{digest.hexdigest()[:16]}"


@contextmanager
def main_process_first_without_timeout(
    is_main: bool, world_size: int, barrier: Callable[[], None], key: str, desc: str, poll_seconds: float = POLL_SECONDS
) -> Iterator[None]:
    """Runs the body on the main process (``is_main``) first, then on the others, as ``main_process_first`` does, but
    the others wait on a file, for as long as the main process takes: no collective runs while it works. ``barrier``
    is the process group's barrier, called once before the body, when every rank is ready; ``key`` names the run
    (its output folder), so that concurrent runs on one machine do not read each other's marker. When the main
    process fails, the others raise a one-line error naming it instead of waiting forever (for bad input, the main
    process's own error)."""
    if world_size <= 1:
        yield
        return
    marker = marker_path(key)
    if is_main:
        marker.unlink(missing_ok=True)  # a previous run's: gone before anybody can read it
    barrier()
    if is_main:
        try:
            yield
        except BaseException as error:
            kind = "usage" if isinstance(error, UsageError) else type(error).__name__
            _write(marker, f"failed: {kind}: {error}")
            raise
        _write(marker, "done")
        return
    started = time.monotonic()
    logged = started
    while not marker.exists():
        time.sleep(poll_seconds)
        if time.monotonic() - logged >= LOG_EVERY_SECONDS:
            logged = time.monotonic()
            logger.warning(f"waiting for the main process: {desc} ({(logged - started) / 60:.0f} min so far)")
    status = marker.read_text(encoding="utf-8")
    if status != "done":
        kind, _, message = status.removeprefix("failed: ").partition(": ")
        if kind == "usage":  # bad input: the same one-line error as the main process's, which launchers show once
            raise UsageError(message)
        raise UsageError(f"the main process stopped while {desc} ({kind}: {message}): see its log")
    yield


def _write(path: Path, text: str) -> None:
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, path)


@contextmanager
def prepare_on_main_process(training_args, desc: str, key: Optional[str] = None) -> Iterator[None]:
    """:func:`main_process_first_without_timeout` for a run's ``TrainingArguments``: each node's main process
    (``local_process_index == 0``) prepares first; its other ranks wait, without a deadline. Each preparation of a
    run (``desc``) has a marker of its own, so a run may prepare in several steps."""
    import torch.distributed as dist

    world_size = training_args.world_size
    barrier = dist.barrier if dist.is_available() and dist.is_initialized() else (lambda: None)
    with main_process_first_without_timeout(
        training_args.local_process_index == 0,
        world_size if dist.is_available() and dist.is_initialized() else 1,
        barrier,
        key or f"{os.path.abspath(training_args.output_dir)}|{desc}",
        desc,
    ):
        yield
