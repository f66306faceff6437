"""The paper's trade-off figures from compression rows: accuracy (or BLEU) against nonzero parameters (the paper's own
axis), against measured latency, or against size on disk (:func:`plot_compression`), and each model's accuracy against
its own dense model's, by sparsity (:func:`plot_robustness`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from ..plots import draw_lines
from .records import own_dense, pruning_of

QUANTIZATION_STYLES = {
    "fp32": "-",
    "onnx-int8": "--",
    "torch-int8": "--",
    "onnx": "-.",
    "quanto-int8": ":",
    "quanto-int4": "-.",
    "quanto-int2": ":",
}
COMPRESSION_AXES = {
    "nonzero_parameters": ("nonzero parameters (millions, log scale)", 1e-6, True),
    "latency_ms": ("measured latency per batch (ms, log scale)", 1.0, True),
    "size_bytes": ("size on disk (MB, log scale)", 1e-6, True),
    "sparsity": ("fraction of the encoder's linear weights pruned", 1.0, False),
    "latency_ms_per_sentence": ("measured latency per sentence (ms, log scale)", 1.0, True),
}
COMPRESSION_METRICS = {"accuracy": "validation accuracy", "bleu": "validation BLEU"}
PRUNING_MARKERS = {"structured": "o", "unstructured": "^", None: "s"}


def compression_line_name(row: dict) -> str:
    """``structured + onnx-int8``, ``unstructured + fp32``, ``fp32``: one line per pruning and quantization method."""
    quantization = row["method"] if row["method"] != "none" else "fp32"
    pruning = pruning_of(row)
    schedule = row.get("schedule")
    if pruning is None:
        return quantization
    return f"{pruning}{', gradual' if schedule == 'gradual' else ''} + {quantization}"


def plot_compression(
    runs: Mapping[str, Sequence[dict]],
    output_file: Union[str, Path],
    x: str = "nonzero_parameters",
    majority: Optional[float] = None,
    y: str = "accuracy",
) -> Path:
    """Accuracy (or ``y="bleu"``) against ``x`` as the paper draws it: one colour per base model, one line per
    pruning and quantization method through its sparsity levels (the dense variant starts every line of its
    quantization; marker: pruning method, line style: quantization), and a reference (the majority class's accuracy,
    or copying the source's BLEU) as a grey line."""
    if x not in COMPRESSION_AXES:
        raise ValueError(f"x must be one of {', '.join(COMPRESSION_AXES)}")
    if y not in COMPRESSION_METRICS:
        raise ValueError(f"y must be one of {', '.join(COMPRESSION_METRICS)}")
    xlabel, scale, log_x = COMPRESSION_AXES[x]
    series = []
    for index, (label, rows) in enumerate(runs.items()):
        lines: dict[str, list[dict]] = {}
        for row in rows:
            lines.setdefault(compression_line_name(row), []).append(row)
        pruned_quantizations = {name.split(" + ")[1] for name in lines if " + " in name}
        for name, members in lines.items():
            quantization = members[0]["method"] if members[0]["method"] != "none" else "fp32"
            if " + " in name:  # a pruning line starts from its dense variant
                members = lines.get(quantization, []) + members
            elif name in pruned_quantizations:
                continue  # drawn as the first point of its pruning lines
            members = sorted(members, key=lambda row: row.get("sparsity", 0.0))
            pruning = name.split(" + ")[0].split(",")[0] if " + " in name else None
            series.append(
                {
                    "label": f"{label} {name}",
                    "x": [row[x] * scale for row in members],
                    "y": [row[y] for row in members],
                    "color": f"C{index}",
                    "marker": PRUNING_MARKERS.get(pruning, "o"),
                    "linestyle": QUANTIZATION_STYLES.get(quantization, "-"),
                }
            )
    reference = "majority class" if y == "accuracy" else "copying the source"
    references = {f"{reference} ({majority:.3f})": majority} if majority is not None else None
    return draw_lines(
        series,
        output_file,
        xlabel,
        COMPRESSION_METRICS[y],
        f"{y if y == 'accuracy' else 'BLEU'} against {xlabel.split(' (')[0]}",
        references,
        log_x=log_x,
    )


def plot_robustness(compression: Mapping[str, Sequence[dict]], path: Union[str, Path]) -> Optional[Path]:
    """Accuracy against each size's own dense model, against target sparsity: one colour per size, one line per
    pruning and quantization method (marker and line style as in the trade-off figures)."""
    series = []
    for index, (size, rows) in enumerate(compression.items()):
        dense = own_dense(rows)
        if dense is None:
            continue
        lines: dict[str, list[dict]] = {}
        for row in rows:
            lines.setdefault(compression_line_name(row), []).append(row)
        for name, members in lines.items():
            if " + " not in name and any(other.endswith(f" + {name}") for other in lines):
                continue  # a dense variant is the first point of its pruning lines
            quantization = name.split(" + ")[-1]
            start = [row for row in lines.get(quantization, []) if pruning_of(row) is None] if " + " in name else []
            members = sorted(start + members, key=lambda row: row.get("target_sparsity", 0.0))
            series.append(
                {
                    "label": f"{size} {name}",
                    "x": [row.get("target_sparsity", 0.0) for row in members],
                    "y": [row["accuracy"] - dense["accuracy"] for row in members],
                    "color": f"C{index}",
                    "marker": PRUNING_MARKERS.get(name.split(" + ")[0].split(",")[0] if " + " in name else None),
                    "linestyle": QUANTIZATION_STYLES.get(quantization, "-"),
                }
            )
    if not series:
        return None
    return draw_lines(
        series,
        path,
        "target sparsity (share of the prunable weights removed)",
        "accuracy minus the size's own dense fp32 accuracy",
        "Robustness to compression: each size against its own dense model",
        {"no loss": 0.0},
    )
