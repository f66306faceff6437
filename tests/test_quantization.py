import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, RobertaForSequenceClassification

from hf_tbc.compress.evaluation import accuracy, latency
from hf_tbc.compress.quantization import onnx_int8, quanto_weights
from hf_tbc.compress.unstructured import prune_model
from hf_tbc.compress.variants import (
    QuantizedModelForSequenceClassification,
    count_variant_parameters,
    load_variant,
    prunable_sparsity,
    prunable_weights,
    size_on_disk,
    variant_kind,
)
from hf_tbc.hardware import INSTRUCTION_SETS, cpu_instruction_set
from hf_tbc.metrics import load_accuracy
from hf_tbc.tasks.mlm.data import train_tokenizer
from hf_tbc.tasks.mlm.model import roberta_config


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A tiny RoBERTa classifier (2 layers, hidden 64) with a real tokenizer, saved as a finetuning run would."""
    from hf_tbc.tasks.mlm.corpus import default_corpus

    lines = default_corpus().read_text().splitlines()[:300]
    tokenizer = train_tokenizer(Dataset.from_dict({"text": lines}), vocab_size=400)
    torch.manual_seed(0)
    config = roberta_config("L2-H64", vocab_size=len(tokenizer), max_position_embeddings=130, pad_token_id=1)
    config.num_labels = 2
    model = RobertaForSequenceClassification(config)
    folder = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def examples(classifier_dir):
    from hf_tbc.tasks.mlm.corpus import default_corpus

    lines = default_corpus().read_text().splitlines()[300:364]
    return Dataset.from_dict({"text": lines, "label": [i % 2 for i in range(len(lines))]})


def reference_logits(folder, examples):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(examples["text"][:16], truncation=True, max_length=64, padding=True, return_tensors="pt")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**encoded).logits, encoded


def test_instruction_set_is_one_the_quantizer_knows():
    assert cpu_instruction_set() in INSTRUCTION_SETS


def test_onnx_int8_variant_loads_with_its_class_and_tracks_the_fp32_model(classifier_dir, examples, tmp_path):
    record = onnx_int8(classifier_dir, tmp_path / "onnx")
    assert record["method"] == "onnx-int8" and record["bits"] == 8
    assert variant_kind(tmp_path / "onnx") == "onnx"
    assert sorted(path.name for path in (tmp_path / "onnx").glob("*.onnx*")) == [
        "model.onnx"
    ]  # one file, no external data
    from hf_tbc import OnnxModelForSequenceClassification

    model = OnnxModelForSequenceClassification.from_pretrained(tmp_path / "onnx")
    expected, encoded = reference_logits(classifier_dir, examples)
    logits = model(**encoded).logits
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max() < 0.1 * expected.abs().max() + 0.05
    assert size_on_disk(tmp_path / "onnx") < 0.5 * size_on_disk(classifier_dir)
    try:  # optimum-onnx, where it installs (transformers 4.57), loads the same folder to the same logits
        from optimum.onnxruntime import ORTModelForSequenceClassification
    except ImportError:
        return
    other = ORTModelForSequenceClassification.from_pretrained(tmp_path / "onnx")
    assert torch.allclose(torch.as_tensor(other(**encoded).logits), logits, atol=1e-6)


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_quanto_variants_save_and_reload_through_the_documented_class(classifier_dir, examples, tmp_path, bits):
    record = quanto_weights(classifier_dir, tmp_path / "quanto", bits)
    assert record == {"method": f"quanto-int{bits}", "bits": bits, "backend": "optimum-quanto"}
    assert variant_kind(tmp_path / "quanto") == "quanto"
    reloaded = QuantizedModelForSequenceClassification.from_pretrained(str(tmp_path / "quanto"))
    expected, encoded = reference_logits(classifier_dir, examples)
    with torch.no_grad():  # quanto's modules reject torch.inference_mode()
        logits = reloaded(**encoded).logits
    error = (logits - expected).abs().max().item()
    tolerance = {8: 0.05, 4: 0.5, 2: 5.0}[bits] * expected.abs().max().item() + 1e-3
    assert error < tolerance
    layer = reloaded._wrapped.roberta.encoder.layer[0].attention.self.query
    assert type(layer).__name__ == "QLinear" and str(layer.weight_qtype.name) == f"qint{bits}"


@pytest.fixture(scope="module")
def pruned_dir(classifier_dir, tmp_path_factory):
    """The tiny classifier with 80 % of its encoder weights pruned, and the pruning report."""
    model = AutoModelForSequenceClassification.from_pretrained(classifier_dir)
    _, report = prune_model(model, 0.8)
    folder = tmp_path_factory.mktemp("pruned")
    model.save_pretrained(folder)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(classifier_dir).save_pretrained(folder)
    return folder, report


# Every configuration is built and measured on every machine: ONNX Runtime runs each of them on any CPU, so the
# AVX2 one (uint8, zero point 128) is checked on AVX-512 machines too, and the other way round.
@pytest.mark.parametrize("instruction_set", ["avx2", "avx512_vnni", "arm64"])
def test_onnx_sparsity_is_measured_on_its_own_dequantized_weights(pruned_dir, tmp_path, instruction_set):
    folder, report = pruned_dir
    record = onnx_int8(folder, tmp_path / "onnx", instruction_set=instruction_set)
    assert record["instruction_set"] == instruction_set
    import onnx
    from onnx import numpy_helper

    zero_points = [
        numpy_helper.to_array(init)
        for init in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.initializer
        if init.name.endswith("_zero_point")
    ]
    if instruction_set == "avx2":  # the case that read as dense: raw values are almost never 0
        assert any(int(point.max()) != 0 for point in zero_points)
    total, nonzero = count_variant_parameters(tmp_path / "onnx")
    assert total - nonzero >= report.zero_prunable_parameters
    # the encoder matrices as stored are as sparse as the pruning made them (rounding may add zeros, never remove)
    assert prunable_sparsity(tmp_path / "onnx") == pytest.approx(report.sparsity, abs=0.02)
    assert prunable_sparsity(tmp_path / "onnx") >= report.sparsity - 1e-9


def test_onnx_dense_variant_reads_as_dense(classifier_dir, tmp_path):
    onnx_int8(classifier_dir, tmp_path / "onnx", instruction_set="avx2")
    assert prunable_sparsity(tmp_path / "onnx") < 0.05


def test_unknown_instruction_set_is_refused(classifier_dir, tmp_path):
    with pytest.raises(ValueError, match="instruction set 'sse2' is unknown"):
        onnx_int8(classifier_dir, tmp_path / "onnx", instruction_set="sse2")
    assert not (tmp_path / "onnx").exists()


def test_pruning_then_quanto_keeps_the_zeros(pruned_dir, tmp_path):
    folder, report = pruned_dir
    total, nonzero = count_variant_parameters(folder)
    assert total - nonzero >= report.zero_prunable_parameters
    quanto_weights(folder, tmp_path / "pruned-quanto", 8)
    reloaded = load_variant(tmp_path / "pruned-quanto")
    zeros = sum(int((w.dequantize() == 0).sum()) for w in prunable_weights(reloaded._wrapped).values())
    assert zeros >= report.zero_prunable_parameters
    assert prunable_sparsity(tmp_path / "pruned-quanto") == pytest.approx(report.sparsity, abs=1e-6)


def test_accuracy_and_latency_work_for_every_kind(classifier_dir, examples, tmp_path):
    onnx_int8(classifier_dir, tmp_path / "onnx")
    quanto_weights(classifier_dir, tmp_path / "quanto", 8)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(classifier_dir)
    scores = {}
    for folder in (classifier_dir, tmp_path / "onnx", tmp_path / "quanto"):
        model = load_variant(folder)
        scores[variant_kind(folder)] = accuracy(model, examples, tokenizer)
        timing = latency(model, tokenizer, examples["text"][:4], batch_size=8, sequence_length=32, runs=3)
        assert timing.median_ms > 0 and timing.batch_size == 8
    assert set(scores) == {"pytorch", "onnx", "quanto"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert abs(scores["onnx"] - scores["pytorch"]) < 0.2


def test_bundled_accuracy_metric_is_evaluate_compatible_and_offline():
    metric = load_accuracy()
    assert metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 0, 2]) == {"accuracy": 0.75}
    assert metric.compute(predictions=[1, 1], references=[1, 0], normalize=False) == {"accuracy": 1.0}
