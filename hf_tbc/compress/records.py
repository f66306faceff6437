"""The compression record: ``compression.jsonl``, one measured row per variant, as ``recipes/compress.py`` writes it
and release, report and figures read it. Light on purpose (no model libraries): the plotting helpers use it too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from ..errors import UsageError

RECORD_FILE = "compression.jsonl"


def read_records(path: Union[str, Path]) -> list[dict]:
    """The rows of a ``compression.jsonl`` (or of the one inside a compression folder)."""
    path = Path(path)
    path = path / RECORD_FILE if path.is_dir() or not path.suffix else path
    if not path.is_file():
        raise UsageError(f"missing record {path}: pass a folder written by recipes/compress.py")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def task_of(rows: list[dict]) -> str:
    """The task whose grid wrote ``rows``: each row names it (grids written before rows did were classifiers')."""
    return rows[0].get("task", "classification") if rows else "classification"


def quality(row: dict) -> float:
    """What a variant scores: a classifier's validation accuracy, a translation model's BLEU."""
    return row["accuracy"] if "accuracy" in row else row["bleu"]


def pruning_of(row: dict) -> Optional[str]:
    """The pruning method of a row: ``"unstructured"``, ``"structured"`` or None (records written before structured
    pruning existed are unstructured when pruned)."""
    if row.get("target_sparsity", 0) <= 0:
        return None
    return row.get("pruning_method") or "unstructured"


def own_dense(rows: list[dict]) -> Optional[dict]:
    """The dense fp32 row of one model's variants: the model every other variant of it is compared with."""
    return next((row for row in rows if pruning_of(row) is None and row["method"] == "none"), None)


def teacher_phrase(row: dict, predictions: str) -> str:
    """What a card adds to its recovery sentence when the variant learnt from its dense parent's ``predictions``
    (e.g. "class distribution"); empty when it recovered from the labels alone."""
    if not row.get("distilled"):
        return ""
    beams = row.get("distill_beams")
    targets = f"; targets: its own beam-search translations, {beams} beams" if beams else ""
    return (
        f", learning from the dense model's {predictions} as well (distillation, weight {row['distill_alpha']}, "
        f"temperature {row['distill_temperature']}{targets})"
    )


LATENCY_FILE = "latency.json"  # every variant of several grids timed side by side (a translation study's latency stage)


def read_latency(folder: Union[str, Path]) -> Optional[dict]:
    """``{(grid, variant): row}`` and the tie margin from ``folder``'s :data:`LATENCY_FILE` (a grid is named by its
    folder); None where it has none."""
    path = Path(folder) / LATENCY_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return {"rows": {(row["grid"], row["variant"]): row for row in record["rows"]}, "margin": record["margin"]}


def side_by_side_latencies(rows: list[dict], grid: str, timings: Optional[dict]) -> Optional[list[dict]]:
    """For each of ``rows`` (the variants of the grid named ``grid``), the latencies :func:`read_latency`'s
    ``timings`` measured for it side by side, as the keys a row holds them under; None where there are no timings or
    they miss one of the variants (the grid's own latencies then stand)."""
    if timings is None:
        return None
    timed = [timings["rows"].get((grid, row["variant"])) for row in rows]
    if any(entry is None for entry in timed):
        return None
    return [
        {
            "latency_ms": entry["latency_ms"],
            "latency_ms_per_sentence": entry["latency_ms"],
            **({"latency_ms_batched": entry["latency_ms_batched"]} if "latency_ms_batched" in entry else {}),
        }
        for entry in timed
    ]
