"""The compression figures: one line per base model and method through its sparsities, readable log ticks."""

import hf_tbc.compress.plots as plots
from hf_tbc.compress.plots import compression_line_name, plot_compression
from hf_tbc.plots import readable_log_axis


def row(variant, method, sparsity, accuracy, pruning=None, latency=10.0):
    return {
        "variant": variant,
        "method": method,
        "sparsity": sparsity,
        "target_sparsity": sparsity,
        "accuracy": accuracy,
        "pruning_method": pruning,
        "latency_ms": latency,
        "nonzero_parameters": int(1e6 * (1 - sparsity)),
        "size_bytes": 4e6 * (1 - sparsity),
    }


def test_each_pruning_method_is_one_line_through_its_sparsities_from_the_dense_point(tmp_path, monkeypatch):
    rows = [
        row("dense-fp32", "none", 0.0, 0.9),
        row("dense-onnx-int8", "onnx-int8", 0.0, 0.89),
        row("structured50-fp32", "none", 0.5, 0.85, "structured"),
        row("structured30-fp32", "none", 0.3, 0.88, "structured"),
        row("structured50-onnx-int8", "onnx-int8", 0.5, 0.84, "structured"),
        row("pruned50-fp32", "none", 0.5, 0.87, "unstructured"),
    ]
    drawn = {}
    monkeypatch.setattr(
        plots,
        "draw_lines",
        lambda series, output_file, *args, **kwargs: drawn.update(
            series=series, references=args[3] if len(args) > 3 else kwargs.get("references"), log_x=kwargs.get("log_x")
        ),
    )
    plot_compression({"L4-H256": rows, "L2-H128": rows[:1]}, tmp_path / "f.png", x="nonzero_parameters", majority=0.51)
    lines = {line["label"]: line for line in drawn["series"]}
    assert set(lines) == {
        "L4-H256 structured + fp32",
        "L4-H256 structured + onnx-int8",
        "L4-H256 unstructured + fp32",
        "L2-H128 fp32",
    }  # the dense points open their pruning lines instead of standing alone
    assert lines["L4-H256 structured + fp32"]["y"] == [0.9, 0.88, 0.85]  # ordered by sparsity, from the dense model
    assert lines["L4-H256 structured + fp32"]["x"] == [1.0, 0.7, 0.5]  # millions of nonzero parameters
    assert lines["L4-H256 structured + onnx-int8"]["y"] == [0.89, 0.84]
    assert lines["L4-H256 structured + fp32"]["color"] != lines["L2-H128 fp32"]["color"]
    assert drawn["references"] == {"majority class (0.510)": 0.51} and drawn["log_x"] is True
    assert compression_line_name({"method": "none", "target_sparsity": 0.5}) == "unstructured + fp32"  # older records


def test_log_axis_labels_major_ticks_only_as_plain_numbers(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([3, 4, 6, 40], [1, 2, 3, 4])
    axes.set_xscale("log")
    readable_log_axis(axes.xaxis)
    figure.canvas.draw()
    major = [label.get_text() for label in axes.xaxis.get_ticklabels() if label.get_text()]
    minor = [label.get_text() for label in axes.xaxis.get_ticklabels(minor=True) if label.get_text()]
    plt.close(figure)
    assert minor == [] and "×" not in "".join(major) and {"5", "10", "20"} <= set(major)


def test_the_real_figure_is_written(tmp_path):
    rows = [
        row("dense-fp32", "none", 0.0, 0.9, latency=20.0),
        row("structured50-fp32", "none", 0.5, 0.85, "structured", 11.0),
    ]
    for x in ("nonzero_parameters", "latency_ms", "size_bytes", "sparsity"):
        path = plot_compression({"L4-H256": rows}, tmp_path / f"{x}.png", x=x, majority=0.5)
        assert path.stat().st_size > 10_000
