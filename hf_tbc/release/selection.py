"""Choosing what to ship: the best variant of each compressed model (accuracy; BLEU for translation) that costs
at most a limit, by latency (ms per measured batch; per sentence for translation), size on disk or nonzero
parameters. The release picks its variants this way, and the study's report its answer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from transformers.utils import logging

from ..compress.records import LATENCY_FILE, quality, read_latency, read_records, side_by_side_latencies
from ..errors import UsageError

logger = logging.get_logger(__name__)

SELECT_BY = {
    "latency": ("latency_ms", 1.0, "ms"),
    "size": ("size_bytes", 1e6, "MB"),
    "nonzero_parameters": ("nonzero_parameters", 1.0, "nonzero parameters"),
}


def check_select_by(select_by: str) -> str:
    if select_by not in SELECT_BY:
        raise UsageError(f"--select_by {select_by!r} is unknown: choose {', '.join(SELECT_BY)}")
    return select_by


def resolve_selection(
    select_by: str = "latency", limit: Optional[float] = None, max_size_mb: Optional[float] = None
) -> tuple[str, Optional[float]]:
    """(select_by, limit) from the release flags (or a study's release section): ``max_size_mb`` is short for size."""
    check_select_by(select_by)
    if max_size_mb is None:
        return select_by, float(limit) if limit is not None else None
    if limit is not None:
        raise UsageError("pass either --max_size_mb or --select_by/--limit, not both")
    return "size", float(max_size_mb)


def cost(row: dict, select_by: str) -> float:
    """What a variant costs in the unit of ``select_by``: ms of latency, MB on disk or nonzero parameters."""
    key, scale, _ = SELECT_BY[check_select_by(select_by)]
    return row[key] / scale


def format_cost(value: float, select_by: str) -> str:
    unit = SELECT_BY[select_by][2]
    return f"{value:,.0f} {unit}" if select_by == "nonzero_parameters" else f"{value:.2f} {unit}"


def best_under(rows: list[dict], select_by: str = "size", limit: Optional[float] = None) -> Optional[dict]:
    """The best-scoring row (accuracy, or BLEU for translation) whose cost is at most ``limit`` (the cheaper one on a
    tie); None if none fits."""
    fitting = [row for row in rows if limit is None or cost(row, select_by) <= limit]
    return max(fitting, key=lambda row: (quality(row), -cost(row, select_by))) if fitting else None


def timed_side_by_side(rows: list[dict], grid: str, timings: Optional[dict]) -> list[dict]:
    """``rows`` of the grid named ``grid`` with the latencies of ``timings`` (:func:`read_latency`'s record: every
    variant of several grids timed in turn in one process) in place of the grid's own, where they cover all its
    variants; as they are where there are no timings, and with a warning where the timings miss a variant."""
    latencies = side_by_side_latencies(rows, grid, timings)
    if latencies is None:
        if timings is not None:
            logger.warning(f"{grid}: the side-by-side timings miss some of its variants; its own latencies are used")
        return rows
    return [{**row, **measured} for row, measured in zip(rows, latencies)]


def read_timings(latency_dir: Optional[Union[str, Path]]) -> Optional[dict]:
    """The side-by-side timings of ``--latency_dir`` (None without one); a one-line error where it holds none."""
    if latency_dir is None:
        return None
    timings = read_latency(latency_dir)
    if timings is None:
        raise UsageError(
            f"--latency_dir {latency_dir} holds no {LATENCY_FILE}: time the grids there first (python -m "
            "hf_tbc.tasks.translation.timing --compression_dirs ... --output_dir it), or leave the flag out"
        )
    return timings


def select_variants(
    compression_dirs: list[Union[str, Path]],
    select_by: str = "size",
    limit: Optional[float] = None,
    timings: Optional[dict] = None,
) -> list[Path]:
    """The most accurate variant of each compression output that costs at most ``limit`` by ``select_by``
    (``latency`` in ms, ``size`` in MB, ``nonzero_parameters``); a base model with none under the limit is
    skipped with a warning that names it. By latency, ``timings`` (:func:`read_timings`) replace each grid's own
    latencies where they cover it."""
    chosen = []
    for directory in compression_dirs:
        rows = read_records(directory)
        if select_by == "latency":
            rows = timed_side_by_side(rows, Path(directory).name, timings)
        best = best_under(rows, select_by, limit)
        if best is None:
            cheapest = min(cost(row, select_by) for row in rows)
            logger.warning(
                f"skipped {directory}: no variant costs at most {format_cost(limit, select_by)} by "
                f"{select_by} (its cheapest: {format_cost(cheapest, select_by)})"
            )
            continue
        chosen.append(Path(directory) / best["variant"])
    return chosen
