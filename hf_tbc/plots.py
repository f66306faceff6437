"""The figures hf-tbc draws: one look for loss curves and compression trade-offs alike (matplotlib, no display).

``draw_lines`` is the shared core; the compression figures that draw on it are in :mod:`hf_tbc.compress.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

LINE_STYLES = ("--", ":", "-.")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def readable_log_axis(axis) -> None:
    """Log scale with plain-number labels on major ticks only (no overlapping ``3×10⁰4×10⁰`` minor labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def draw_lines(
    series: Sequence[dict],
    output_file: Union[str, Path],
    xlabel: str,
    ylabel: str,
    title: str,
    references: Optional[Mapping[str, float]] = None,
    log_x: bool = False,
) -> Path:
    """One PNG from ``series`` (dicts with ``label``, ``x``, ``y`` and optional ``marker``, ``color``,
    ``linestyle``); ``references`` are horizontal lines (a unigram loss, a majority-class accuracy)."""
    plt = _pyplot()
    beside = len(series) + len(references or {}) > 8  # a legend that long would cover the lines: put it to the right
    figure, axes = plt.subplots(figsize=(10.5 if beside else 7.5, 4.8))
    for line in series:
        if line["x"]:
            axes.plot(
                line["x"],
                line["y"],
                label=line["label"],
                marker=line.get("marker"),
                markersize=4,
                color=line.get("color"),
                linestyle=line.get("linestyle", "-"),
            )
    for index, (label, value) in enumerate((references or {}).items()):
        axes.axhline(value, color="0.35", linestyle=LINE_STYLES[index % 3], linewidth=1.2, label=label)
    if log_x:
        axes.set_xscale("log")
        readable_log_axis(axes.xaxis)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both" if log_x else "major")
    if axes.get_legend_handles_labels()[0]:
        placement = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0) if beside else {}
        axes.legend(fontsize=7 if len(series) > 6 else 9, **placement)
    figure.tight_layout()
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_file, dpi=120)
    plt.close(figure)
    return output_file
