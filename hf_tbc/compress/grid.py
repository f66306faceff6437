"""What every task's compression grid shares: the output folder's check, all-or-nothing staging of the variants, and
the memory bound on variants loaded together for latency. The grids themselves live with their task
(``tasks/classification/compress.py``, ``tasks/translation/compress.py``)."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..budget.runs import check_writable
from ..errors import UsageError
from .arguments import CompressionArguments


def check_output_dir(args: CompressionArguments) -> None:
    """``UsageError`` unless ``--output_dir`` can be written and holds no other output (or may be overwritten)."""
    output_dir = Path(args.output_dir)
    check_writable(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not args.overwrite_output_dir:
        raise UsageError(f"--output_dir {output_dir} already holds files: pass --overwrite_output_dir to replace them")


@contextmanager
def staged_output(output_dir: Path) -> Iterator[Path]:
    """A fresh folder beside ``output_dir`` (same filesystem: a rename moves it) to build a grid in. When the block
    finishes it is put at ``output_dir``, replacing what was there; when the block fails it is removed: a failed grid
    leaves no half-written output, and the previous one whole."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        yield staging
        swap_in(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def swap_in(staging: Path, output_dir: Path) -> None:
    """Puts the finished ``staging`` folder at ``output_dir``; a previous output there is removed only after."""
    previous = None
    if output_dir.exists():
        previous = output_dir.with_name(f".{output_dir.name}-previous-{staging.name.rsplit('-', 1)[-1]}")
        output_dir.rename(previous)
    try:
        staging.rename(output_dir)
    except OSError:
        if previous is not None:
            previous.rename(output_dir)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def latency_groups(rows: list[dict], limit_bytes: float) -> list[list[dict]]:
    """``rows`` split, in order, into groups of variants that fit in memory together, each counted at twice its
    bytes on disk (its weights, plus what the runtime allocates to run them); a variant over the limit alone is a
    group of its own."""
    groups: list[list[dict]] = []
    used = math.inf
    for row in rows:
        need = 2.0 * row["size_bytes"]
        if used + need > limit_bytes:
            groups.append([])
            used = 0.0
        groups[-1].append(row)
        used += need
    return groups


def memory_limit(args: CompressionArguments) -> float:
    """Bytes of variants that may be loaded at once for latency: ``--latency_memory_mb``, else half the free memory."""
    if args.latency_memory_mb is not None:
        return args.latency_memory_mb * 1e6
    import psutil

    return psutil.virtual_memory().available / 2
