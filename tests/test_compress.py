"""Finetune, then compress over the whole grid, through the recipes' real CLIs; every variant is reloaded and
re-measured."""

import json
import subprocess
import sys

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from hf_tbc.compress.arguments import CompressionArguments, variant_name
from hf_tbc.compress.evaluation import accuracy
from hf_tbc.compress.grid import latency_groups
from hf_tbc.compress.variants import load_variant, variant_kind
from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data
from hf_tbc.tasks.mlm.data import train_tokenizer
from hf_tbc.tasks.mlm.model import roberta_config
from tests.conftest import ACCELERATE_ONE_PROCESS, REPO
from tests.test_classification import write_table

FINETUNE = str(REPO / "recipes" / "run_classification.py")
COMPRESS = str(REPO / "recipes" / "compress.py")
PAIR = ["--text_column", "premise", "--text_pair_column", "hypothesis", "--label_column", "gold"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A pair task made from real sentences (does the hypothesis repeat the premise?), as CSV files."""
    from hf_tbc.tasks.mlm.corpus import default_corpus

    lines = default_corpus().read_text().splitlines()[:400]
    folder = tmp_path_factory.mktemp("pairs")
    rows = [
        (line, line if i % 2 else lines[(i * 7 + 3) % 400], "entailment" if i % 2 else "contradiction")
        for i, line in enumerate(lines)
    ]
    header = ["premise", "hypothesis", "gold"]
    return {
        "train": write_table(folder / "train.csv", header, rows[:320]),
        "dev": write_table(folder / "dev.csv", header, rows[320:]),
        "odd": write_table(folder / "odd.csv", header, [("a b c", "a b c", "neutral")]),
        "empty": write_table(folder / "empty.csv", header, []),
        "lines": lines,
    }


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, data):
    """A tiny masked LM with its own tokenizer, saved as run_mlm.py saves one."""
    tokenizer = train_tokenizer(Dataset.from_dict({"text": data["lines"]}), vocab_size=500)
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(
        roberta_config(
            "L2-H64",
            vocab_size=len(tokenizer),
            max_position_embeddings=130,
            pad_token_id=1,
            architecture="roberta-prelayernorm",
        )
    )
    folder = tmp_path_factory.mktemp("pretrained")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, pretrained, data):
    out = tmp_path_factory.mktemp("finetuned") / "run"
    command = [
        *ACCELERATE_ONE_PROCESS,
        FINETUNE,
        "--model_name_or_path",
        str(pretrained),
        "--train_file",
        data["train"],
        "--validation_file",
        data["dev"],
        *PAIR,
        "--time_budget",
        "8s",
        "--learning_rate",
        "1e-3",
        "--per_device_train_batch_size",
        "16",
        "--max_seq_length",
        "64",
        "--disable_tqdm",
        "true",
        "--output_dir",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_finetuned_pair_classifier_loads_and_reproduces_its_accuracy(finetuned, data):
    record = json.loads((finetuned / "eval_results.json").read_text())
    assert record["text_pair"] and record["labels"] == ["contradiction", "entailment"]
    assert record["stop_reason"] == "time_budget" and record["steps"] > 0
    model = AutoModelForSequenceClassification.from_pretrained(finetuned)
    assert model.config.id2label == {0: "contradiction", 1: "entailment"}
    splits, _ = load_classification_data(
        ClassificationDataArguments(
            validation_file=data["dev"], text_column="premise", text_pair_column="hypothesis", label_column="gold"
        ),
        label_names=record["labels"],
    )
    measured = accuracy(model, splits["validation"], AutoTokenizer.from_pretrained(finetuned), max_length=64)
    assert measured == pytest.approx(record["accuracy"])


@pytest.mark.slow
def test_every_variant_of_the_grid_is_measured_and_reloads_with_its_recorded_accuracy(tmp_path, finetuned, data):
    out = tmp_path / "compressed"
    command = [
        sys.executable,
        COMPRESS,
        "--model_name_or_path",
        str(finetuned),
        "--train_file",
        data["train"],
        "--validation_file",
        data["dev"],
        *PAIR,
        "--sparsities",
        "0,0.5",
        "--pruning_scope",
        "global",
        "--pruning_method",
        "unstructured,structured",
        "--importance",
        "taylor",
        "--importance_batches",
        "3",
        "--quantization",
        "none,onnx-int8,quanto-int8,quanto-int4",
        "--recovery_steps",
        "3",
        "--latency_runs",
        "3",
        "--latency_batch_size",
        "8",
        "--output_dir",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "compression.jsonl").read_text().splitlines()]
    methods = ("none", "onnx-int8", "quanto-int8", "quanto-int4")
    assert [row["variant"] for row in rows] == [
        variant_name(s, m, p) for s, p in ((0, ""), (0.5, "unstructured"), (0.5, "structured")) for m in methods
    ]
    keys = (
        "variant",
        "method",
        "sparsity",
        "bits",
        "parameters",
        "nonzero_parameters",
        "size_bytes",
        "accuracy",
        "latency_ms",
    )
    assert all(row[key] is not None for row in rows for key in keys)
    dense, pruned = rows[0], rows[4]
    assert dense["sparsity"] < 0.01 and pruned["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert pruned["nonzero_parameters"] < dense["nonzero_parameters"]
    assert rows[1]["size_bytes"] < 0.5 * dense["size_bytes"] and rows[1]["bits"] == 8 and rows[3]["bits"] == 4
    structured = rows[8:]
    assert all(row["pruning_method"] == "structured" and row["importance"] == "taylor" for row in structured)
    assert structured[0]["num_hidden_layers"] == 1 and structured[0]["parameters"] < dense["parameters"]
    assert structured[0]["sparsity"] == pytest.approx(0.5, abs=0.06)  # removed, not zero: counted against the parent
    assert structured[0]["size_bytes"] < dense["size_bytes"] and structured[1]["size_bytes"] < rows[1]["size_bytes"]
    assert all(row["recovery"] for row in rows)  # the dense baseline got the same extra finetuning
    assert all(row["latency_ms_alone"] > 0 and row["latency_rounds"] == 3 for row in rows)
    for figure in ("accuracy_vs_nonzero_parameters.png", "accuracy_vs_latency.png", "accuracy_vs_size.png"):
        assert (out / figure).exists()

    tokenizer = AutoTokenizer.from_pretrained(out / "dense-fp32")
    splits, _ = load_classification_data(
        ClassificationDataArguments(
            validation_file=data["dev"], text_column="premise", text_pair_column="hypothesis", label_column="gold"
        ),
        label_names=["contradiction", "entailment"],
    )
    expected_kind = {"none": "pytorch", "onnx-int8": "onnx", "quanto-int8": "quanto", "quanto-int4": "quanto"}
    for row in rows:
        folder = out / row["variant"]
        assert variant_kind(folder) == expected_kind[row["method"]]
        assert row["max_seq_length"] == 64  # the length the model was finetuned with, from its eval_results.json
        measured = accuracy(load_variant(folder), splits["validation"], tokenizer, max_length=row["max_seq_length"])
        assert measured == pytest.approx(row["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--sparsities", "0,1.0"], "sparsity 1.0 must be in [0, 1)"),
        (["--sparsities", "0,half"], "'half' is not a number"),
        (["--quantization", "none,gptq"], "unknown quantization method 'gptq'"),
        (["--quantization", "none,torch-int8"], "--quantization torch-int8 is for translation models"),
        (["--distill_beams", "4"], "--distill_beams is for translation models"),
        (
            ["--pruning_method", "structured", "--importance", "taylor"],
            "Taylor importance and --target_shapes need training data",
        ),
        (["--validation_file", "ODD"], "labels ['neutral'] in the validation split"),
        (["--validation_file", "EMPTY"], "has no rows"),
        (["--model_name_or_path", "PRETRAINED"], "has no classification head"),
        (["--label_column", "verdict"], "column 'verdict' is not in"),
    ],
)
def test_bad_compression_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, finetuned, pretrained, data, arguments, message
):
    replace = {"ODD": data["odd"], "EMPTY": data["empty"], "PRETRAINED": str(pretrained)}
    arguments = [replace.get(a, a) for a in arguments]
    out = tmp_path / "out"
    command = [
        sys.executable,
        COMPRESS,
        "--model_name_or_path",
        str(finetuned),
        "--validation_file",
        data["dev"],
        *PAIR,
        "--output_dir",
        str(out),
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
    assert not out.exists()


def test_compression_arguments_parse_the_grid():
    args = CompressionArguments(
        model_name_or_path="m", output_dir="o", sparsities="0, 0.3,0.9", quantization="none,quanto-int2"
    )
    assert args.sparsity_grid == [0.0, 0.3, 0.9] and args.methods == ["none", "quanto-int2"]
    assert variant_name(0.3, "quanto-int2") == "pruned30-quanto-int2" and variant_name(0, "none") == "dense-fp32"
    assert variant_name(0.5, "onnx-int8", "structured") == "structured50-onnx-int8"
    assert CompressionArguments(
        model_name_or_path="m", output_dir="o", pruning_method="structured", importance="taylor"
    ).needs_training_data
    with pytest.raises(ValueError, match="gradual prunes during finetuning"):
        CompressionArguments(model_name_or_path="m", output_dir="o", pruning_schedule="gradual")
    with pytest.raises(ValueError, match="unknown --pruning_method 'channels'"):
        CompressionArguments(model_name_or_path="m", output_dir="o", pruning_method="structured,channels")


@pytest.fixture
def tiny_classifier(tmp_path, data):
    """A tiny untrained pair classifier saved with its tokenizer, and validation rows for it (no training needed)."""
    from transformers import RobertaForSequenceClassification

    tokenizer = train_tokenizer(Dataset.from_dict({"text": data["lines"]}), vocab_size=400)
    torch.manual_seed(0)
    config = roberta_config("L2-H32", vocab_size=len(tokenizer), max_position_embeddings=130, pad_token_id=1)
    config.num_labels = 2
    folder = tmp_path / "classifier"
    RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    validation = Dataset.from_dict({"text": data["lines"][:16], "label": [i % 2 for i in range(16)]})
    return folder, validation


def _grid(folder, out, **kwargs):
    return CompressionArguments(
        model_name_or_path=str(folder),
        output_dir=str(out),
        latency_runs=1,
        latency_batch_size=4,
        latency_sequence_length=16,
        **kwargs,
    )


def test_a_failing_rerun_leaves_the_previous_grid_whole(tmp_path, tiny_classifier, monkeypatch):
    import hf_tbc.tasks.classification.compress as grid

    folder, validation = tiny_classifier
    out = tmp_path / "compressed"
    grid.compress_grid(_grid(folder, out, sparsities="0,0.5", quantization="none"), validation, max_length=16)
    before = {path.relative_to(out): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    real, calls = grid.measure_variant, []

    def fails_on_the_second_variant(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory while measuring")
        return real(*args, **kwargs)

    monkeypatch.setattr(grid, "measure_variant", fails_on_the_second_variant)
    with pytest.raises(RuntimeError, match="out of memory"):
        grid.compress_grid(
            _grid(folder, out, sparsities="0,0.5,0.9", quantization="none", overwrite_output_dir=True),
            validation,
            max_length=16,
        )
    after = {path.relative_to(out): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    assert after == before  # every file of the old grid, byte for byte
    assert sorted(path.name for path in tmp_path.iterdir()) == ["classifier", "compressed"]  # no staging left behind
    monkeypatch.setattr(grid, "measure_variant", real)
    rows = grid.compress_grid(
        _grid(folder, out, sparsities="0,0.9", quantization="none", overwrite_output_dir=True),
        validation,
        max_length=16,
    )
    assert [row["variant"] for row in rows] == ["dense-fp32", "pruned90-fp32"]
    assert sorted(path.name for path in out.iterdir() if path.is_dir()) == ["dense-fp32", "pruned90-fp32"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["classifier", "compressed"]


def test_a_classifier_pruned_to_a_shape_recovers_from_its_dense_teacher_and_reloads_with_its_accuracy(
    tmp_path, tiny_classifier, data
):
    import hf_tbc.tasks.classification.compress as grid
    from hf_tbc.tasks.classification.data import tokenize

    folder, validation = tiny_classifier
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = Dataset.from_dict({"text": data["lines"][:64], "label": [i % 2 for i in range(64)]})
    train = tokenize(rows, tokenizer, 16)
    out = tmp_path / "compressed"
    args = _grid(
        folder,
        out,
        sparsities="0,0.5",
        pruning_method="structured",
        quantization="none",
        target_shapes="L1-H16",
        recovery_steps=2,
        importance_batches=1,
    )
    rows = {row["variant"]: row for row in grid.compress_grid(args, validation, train, max_length=16)}
    assert list(rows) == ["dense-fp32", "structured50-fp32", "to-L1-H16-fp32"]
    shaped = rows["to-L1-H16-fp32"]
    assert shaped["pruning_method"] == "shape" and shaped["distilled"] and shaped["recovery_s"] > 0
    assert shaped["recovery_steps_run"] == 2
    assert rows["structured50-fp32"]["distilled"] and not rows["dense-fp32"]["distilled"]
    assert (shaped["num_hidden_layers"], shaped["hidden_size"], shaped["num_attention_heads"]) == (1, 16, 1)
    assert shaped["parameters"] < rows["dense-fp32"]["parameters"]
    model = load_variant(out / "to-L1-H16-fp32")
    assert type(model) is AutoModelForSequenceClassification.from_pretrained(folder).__class__
    assert accuracy(model, validation, tokenizer, max_length=16) == pytest.approx(shaped["accuracy"])
    from types import SimpleNamespace

    from hf_tbc.tasks.classification.card import _compression_text

    text = _compression_text(SimpleNamespace(row=shaped))
    assert "Pruned to the shape L1-H16 from 2 layers, hidden 32" in text and "(distillation, weight 0.5" in text
    no_teacher = _grid(folder, tmp_path / "plain", sparsities="0", target_shapes="L1-H16", distill=False)
    assert not no_teacher.teacher_used and no_teacher.needs_training_data


def test_the_final_latency_measurement_holds_at_most_its_memory_limit_of_variants(
    tmp_path, tiny_classifier, monkeypatch
):
    import weakref

    import hf_tbc.tasks.classification.compress as grid

    folder, validation = tiny_classifier
    live, peak = set(), []
    real = grid.load_variant

    def counted(*args, **kwargs):
        model = real(*args, **kwargs)
        key = id(model)
        live.add(key)
        weakref.finalize(model, live.discard, key)
        peak.append(len(live))
        return model

    monkeypatch.setattr(grid, "load_variant", counted)
    size = (folder / "model.safetensors").stat().st_size
    # room for two variants at twice their size on disk
    args = _grid(
        folder, tmp_path / "out", sparsities="0,0.3,0.6,0.9", quantization="none", latency_memory_mb=4.5 * size / 1e6
    )
    rows = grid.compress_grid(args, validation, max_length=16)
    assert len(rows) == 4 and max(peak) <= 2
    assert [row["latency_group"] for row in rows] == [0, 0, 1, 1] and all(row["latency_ms"] > 0 for row in rows)


def test_latency_groups_fill_in_order_and_give_an_oversized_variant_its_own():
    rows = [
        {"variant": name, "size_bytes": size} for name, size in (("a", 10), ("b", 10), ("c", 50), ("d", 5), ("e", 5))
    ]
    groups = [[row["variant"] for row in group] for group in latency_groups(rows, 45)]
    assert groups == [["a", "b"], ["c"], ["d", "e"]]
    assert [[row["variant"] for row in group] for group in latency_groups(rows, 1e9)] == [["a", "b", "c", "d", "e"]]


def test_taylor_layer_removal_on_a_post_ln_classifier_is_refused_before_anything_is_built(tmp_path, tiny_classifier):
    from hf_tbc.tasks.classification.compress import compress_grid

    folder, validation = tiny_classifier  # a post-LayerNorm RoBERTa
    with pytest.raises(ValueError, match="only for pre-LayerNorm models"):
        compress_grid(
            _grid(
                folder,
                tmp_path / "out",
                sparsities="0,0.5",
                quantization="none",
                pruning_method="structured",
                importance="taylor",
            ),
            validation,
            max_length=16,
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["classifier"]
