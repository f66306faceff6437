"""hf_tbc.compress.seq2seq and hf_tbc.tasks.translation.compress: feed-forward pruning of encoder-decoders, int8
translation models saved and reloaded, and recipes/compress.py's grid on a translation model, run as a user runs it."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

from hf_tbc import OnnxModelForSeq2SeqLM
from hf_tbc.compress.seq2seq import QuantizedModelForSeq2SeqLM, kept_neurons, prune_feed_forward, stack_layers
from hf_tbc.errors import UsageError
from hf_tbc.tasks.translation.bleu import read_translations
from hf_tbc.tasks.translation.data import train_pair_tokenizer
from hf_tbc.tasks.translation.model import seq2seq_config
from tests.conftest import REPO
from tests.test_translation import word_pairs, write_tsv

COMPRESS = str(REPO / "recipes" / "compress.py")


def tiny_model(architecture: str = "m2m100", vocab_size: int = 300):
    torch.manual_seed(0)
    config = seq2seq_config(
        "E2-D2-H64",
        vocab_size=vocab_size,
        architecture=architecture,
        dropout=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    return AutoModelForSeq2SeqLM.from_config(config).eval()


def test_kept_neurons_are_a_multiple_of_eight():
    assert kept_neurons(256, 0.5) == 128 and kept_neurons(256, 0.0) == 256 and kept_neurons(256, 0.99) == 8
    with pytest.raises(ValueError):
        kept_neurons(256, 1.0)


@pytest.mark.parametrize("architecture", ["m2m100", "mbart", "marian"])
def test_removing_neurons_that_contribute_nothing_leaves_the_outputs_unchanged(tmp_path, architecture):
    """Half the neurons of every layer get a zero output column (so the lowest magnitude score): pruning half removes
    exactly those, the logits stay the same, and the smaller model is a stock config that reloads."""
    model = tiny_model(architecture)
    with torch.no_grad():
        for stack in ("encoder", "decoder"):
            for layer in stack_layers(model, stack):
                layer.fc2.weight[:, ::2] = 0.0
    inputs = {"input_ids": torch.tensor([[5, 9, 14, 2]]), "decoder_input_ids": torch.tensor([[2, 7, 11]])}
    with torch.no_grad():
        before = model(**inputs).logits
    report = prune_feed_forward(model, 0.5)
    assert report.encoder_ffn_dim == (256, 128) and report.decoder_ffn_dim == (256, 128)
    assert 0.2 < report.sparsity < 0.5  # attention stays: a half of the FFN is a third of an encoder layer's weights
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, before, atol=1e-5)
    model.save_pretrained(tmp_path / "pruned")
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "pruned").eval()
    assert reloaded.config.encoder_ffn_dim == 128 and reloaded.config.decoder_ffn_dim == 128
    with torch.no_grad():
        assert torch.allclose(reloaded(**inputs).logits, before, atol=1e-5)


def test_int8_translation_model_saves_small_and_reloads_the_same(tmp_path):
    model = tiny_model()
    model.generation_config.num_beams = 3
    quantized = QuantizedModelForSeq2SeqLM.quantize(model)
    quantized.save_pretrained(tmp_path / "int8")
    model.save_pretrained(tmp_path / "fp32")
    reloaded = QuantizedModelForSeq2SeqLM.from_pretrained(tmp_path / "int8")
    source = torch.tensor([[5, 9, 14, 22, 2]])
    first = quantized.generate(input_ids=source, max_length=12)
    assert torch.equal(reloaded.generate(input_ids=source, max_length=12), first)
    assert reloaded.generation_config.num_beams == 3
    int8_bytes = (tmp_path / "int8" / QuantizedModelForSeq2SeqLM.WEIGHTS).stat().st_size
    assert int8_bytes < 0.6 * (tmp_path / "fp32" / "model.safetensors").stat().st_size
    linear = sum(module.weight.numel() for module in model.modules() if isinstance(module, torch.nn.Linear))
    tied = model.get_output_embeddings().weight.numel()  # the output layer's int8 copy of the embedding
    assert reloaded.quantized_weights() == linear - tied  # every other linear layer
    with pytest.raises(UsageError, match="AutoModelForSeq2SeqLM"):
        QuantizedModelForSeq2SeqLM.from_pretrained(tmp_path / "fp32")


@pytest.fixture(scope="module")
def translation_folder(tmp_path_factory):
    """A tiny fresh translation model with a tokenizer trained on the pairs, saved as run_translation.py saves it."""
    from datasets import Dataset

    folder = tmp_path_factory.mktemp("mt")
    rows = word_pairs(400, 0)
    tokenizer = train_pair_tokenizer(
        Dataset.from_dict({"source": [a for a, _ in rows], "target": [b for _, b in rows]})
    )
    model = tiny_model(vocab_size=len(tokenizer))
    model.generation_config.max_length = 16
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    files = {
        "train": write_tsv(folder / "train.tsv", rows),
        "validation": write_tsv(folder / "dev.tsv", word_pairs(20, 1)),
    }
    return folder / "model", files


def _compress(model, files, output, *extra):
    return subprocess.run(
        [
            sys.executable,
            COMPRESS,
            "--model_name_or_path",
            str(model),
            "--train_file",
            files["train"],
            "--validation_file",
            files["validation"],
            "--output_dir",
            str(output),
            "--max_eval_samples",
            "8",
            "--latency_sentences",
            "3",
            *extra,
        ],
        capture_output=True,
        text=True,
    )


def test_translation_grid_prunes_quantizes_measures_and_records_every_variant(tmp_path, translation_folder):
    model, files = translation_folder
    out = tmp_path / "compressed"
    done = _compress(
        model,
        files,
        out,
        "--pruning_method",
        "structured",
        "--sparsities",
        "0,0.5",
        "--quantization",
        "none,torch-int8,onnx-int8",
        "--recovery_steps",
        "2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "compression.jsonl").read_text().splitlines()]
    assert [row["variant"] for row in rows] == [
        "dense-fp32",
        "dense-torch-int8",
        "dense-onnx-int8",
        "structured50-fp32",
        "structured50-torch-int8",
        "structured50-onnx-int8",
    ]
    onnx = rows.pop(5)
    assert onnx["backend"] == "onnxruntime" and onnx["bits"] == 8 and onnx["instruction_set"]
    assert onnx["parameters"] == rows[3]["parameters"] and onnx["sparsity"] == rows[3]["sparsity"]
    assert onnx["size_bytes"] < 0.6 * rows[3]["size_bytes"] and 0 <= onnx["bleu"] <= 100 and onnx["latency_ms"] > 0
    assert OnnxModelForSeq2SeqLM.is_onnx(out / "structured50-onnx-int8")
    rows.pop(2)
    for row in rows:
        assert row["task"] == "translation" and row["eval_pairs"] == 8 and row["recovery"]
        assert 0 <= row["bleu"] <= 100 and row["latency_ms"] > 0 and row["latency_sentences"] == 3
    dense, pruned = rows[0], rows[2]
    assert (pruned["encoder_ffn_dim"], pruned["decoder_ffn_dim"]) == (128, 128) and pruned["sparsity"] > 0.2
    assert rows[1]["sparsity"] == 0.0 and rows[3]["sparsity"] == pruned["sparsity"]  # int8 removes no weights
    assert pruned["parameters"] < dense["parameters"] and rows[1]["size_bytes"] < 0.6 * dense["size_bytes"]
    assert AutoModelForSeq2SeqLM.from_pretrained(out / "structured50-fp32").config.encoder_ffn_dim == 128
    assert QuantizedModelForSeq2SeqLM.is_quantized(out / "structured50-torch-int8")
    assert all((out / name).stat().st_size > 0 for name in ("bleu_vs_latency.png", "bleu_vs_size.png"))


def test_pruning_to_a_shape_distils_from_the_dense_model_and_the_variant_gives_its_recorded_bleu(
    tmp_path, translation_folder
):
    from transformers import AutoTokenizer

    from hf_tbc.tasks.translation.bleu import corpus_scores
    from hf_tbc.tasks.translation.compress import translate

    model, files = translation_folder
    out = tmp_path / "compressed"
    extra = ["--sparsities", "0", "--quantization", "none,onnx-int8", "--recovery_steps", "2"]
    shapes = ["--target_shapes", "E1-D1-H32,E2-D2-H64", "--importance_batches", "2", "--distill_beams", "2"]
    done = _compress(model, files, out, *extra, *shapes)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--target_shapes E2-D2-H64 is this model's own shape: left out" in done.stderr
    rows = {row["variant"]: row for row in map(json.loads, (out / "compression.jsonl").read_text().splitlines())}
    assert list(rows) == ["dense-fp32", "dense-onnx-int8", "to-E1-D1-H32-fp32", "to-E1-D1-H32-onnx-int8"]
    dense, shaped = rows["dense-fp32"], rows["to-E1-D1-H32-fp32"]
    assert shaped["pruning_method"] == "shape" and shaped["shape"] == "E1-D1-H32" and shaped["distilled"]
    assert not dense["distilled"] and dense["pruning_method"] is None  # the dense model recovers without a teacher
    assert shaped["distill_beams"] == 2 and dense["distill_beams"] is None  # targets: the teacher's own beam output
    assert shaped["parent_shape"] == {"hidden": 64, "heads": 2, "ffn": 256, "encoder": 2, "decoder": 2}
    assert shaped["parameters"] < dense["parameters"] and 0 < shaped["target_sparsity"] < 1
    for row in (dense, shaped):  # the loss before and after recovery, and the recovery's time, for every variant
        assert row["loss_before_recovery"] > 0 and row["validation_loss"] > 0 and row["recovery_s"] > 0
        assert row["recovery_steps_run"] == 2
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(out / "to-E1-D1-H32-fp32").eval()
    config = reloaded.config
    assert (config.encoder_layers, config.decoder_layers, config.d_model, config.encoder_attention_heads) == (
        1,
        1,
        32,
        1,
    )
    assert (config.encoder_ffn_dim, config.decoder_ffn_dim) == (128, 128)
    pairs = [line.split("\t") for line in open(files["validation"]).read().splitlines()[1:9]]
    tokenizer = AutoTokenizer.from_pretrained(out / "to-E1-D1-H32-fp32")
    hypotheses = translate(reloaded, tokenizer, [source for source, _ in pairs])
    assert corpus_scores(hypotheses, [target for _, target in pairs])["bleu"] == pytest.approx(shaped["bleu"])
    saved = read_translations(out / "to-E1-D1-H32-fp32" / "translations_validation.tsv")  # for paired tests
    assert [row["translation"] for row in saved] == hypotheses and len(saved) == 8


def test_variants_of_several_grids_are_timed_side_by_side_in_one_process(tmp_path, translation_folder):
    """python -m hf_tbc.tasks.translation.timing loads every variant of every grid (each with its own tokenizer),
    times them in turn over two passes, and writes one row per variant and the passes' spread; bad input gets one
    line and no file."""
    import shutil

    from hf_tbc.compress.records import read_latency

    model, files = translation_folder
    small = tmp_path / "E2-D2-H64"
    done = _compress(model, files, small, "--sparsities", "0", "--quantization", "none,torch-int8")
    assert done.returncode == 0, done.stderr[-3000:]
    other = tmp_path / "other"
    shutil.copytree(small, other)
    timing = [sys.executable, "-m", "hf_tbc.tasks.translation.timing", "--train_file", files["train"]]
    timing += ["--validation_file", files["validation"]]
    timing += ["--max_eval_samples", "6", "--latency_sentences", "2", "--latency_batch_size", "4"]
    timing += ["--latency_runs", "2", "--output_dir", str(tmp_path / "latency")]
    done = subprocess.run([*timing, "--compression_dirs", str(small), str(other)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "latency" / "latency.json").read_text())
    assert [(row["grid"], row["variant"]) for row in record["rows"]] == [
        (grid, variant) for grid in ("E2-D2-H64", "other") for variant in ("dense-fp32", "dense-torch-int8")
    ]
    for row in record["rows"]:
        assert len(row["passes_ms"]) == 2 and row["latency_ms"] == pytest.approx(sum(row["passes_ms"]) / 2, abs=1e-3)
        assert row["latency_ms_batched"] > 0
    spread = max(abs(a - b) / min(a, b) for row in record["rows"] for a, b in [row["passes_ms"]])
    assert record["margin"] >= spread - 1e-3 and record["latency_sentences"] == 2 and record["latency_batch"] == 4
    assert read_latency(tmp_path / "latency")["rows"][("other", "dense-fp32")]["grid"] == "other"
    missing = subprocess.run([*timing, "--compression_dirs", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "holds no compression.jsonl" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0
    beams = subprocess.run(
        [*timing, "--compression_dirs", str(small), "--num_beams", "4"], capture_output=True, text=True
    )
    assert (
        beams.returncode == 2
        and "--num_beams does not apply here: every variant is timed decoding as its saved" in (beams.stderr)
    )


def test_translation_grid_refuses_classifier_methods_in_one_line_and_writes_nothing(tmp_path, translation_folder):
    model, files = translation_folder
    out = tmp_path / "compressed"
    for extra, message in (
        (["--quantization", "quanto-int8"], "translation models take none, torch-int8, onnx, onnx-int8"),
        (["--pruning_method", "unstructured", "--sparsities", "0,0.5"], "--pruning_method structured"),
    ):
        done = _compress(model, files, out, *extra)
        assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
        assert done.stderr.strip().count("\n") == 0 and not out.exists()


def test_the_grid_cuts_sources_as_training_did_uses_the_runs_split_and_keeps_to_its_memory(tmp_path):
    """One 600-token source in the validation file: training cut sources to --max_source_length, so the grid does
    too (an mBART's learned position table ends at max length + 2, so the whole source would fail); without a
    validation file the grid holds out what the run held out (same --seed and share); --max_train_samples bounds
    recovery; and a --latency_memory_mb too small for two variants measures them in groups."""
    from datasets import Dataset

    from hf_tbc.compress.arguments import CompressionArguments
    from hf_tbc.tasks.translation.arguments import TranslationDataArguments
    from hf_tbc.tasks.translation.compress import _grid_data, translation_grid
    from hf_tbc.tasks.translation.data import load_pairs

    rows = word_pairs(300, 0)
    tokenizer = train_pair_tokenizer(
        Dataset.from_dict({"source": [a for a, _ in rows], "target": [b for _, b in rows]})
    )
    torch.manual_seed(0)
    config = seq2seq_config(
        "E1-D1-H64",
        vocab_size=len(tokenizer),
        architecture="mbart",
        max_position_embeddings=34,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    model = AutoModelForSeq2SeqLM.from_config(config).eval()
    model.generation_config.max_length = 16
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    long_source = " ".join(["red blue green cat dog"] * 120)  # ~600 tokens
    validation = write_tsv(tmp_path / "dev.tsv", [(long_source, "rouge")] + word_pairs(6, 1))
    train = write_tsv(tmp_path / "train.tsv", rows)
    data = TranslationDataArguments(
        train_file=train, validation_file=validation, max_source_length=32, max_target_length=16
    )
    assert len(tokenizer(long_source)["input_ids"]) > 500
    args = CompressionArguments(
        model_name_or_path=str(tmp_path / "model"),
        output_dir=str(tmp_path / "compressed"),
        sparsities="0",
        quantization="none,torch-int8",
        latency_sentences=2,
        latency_runs=1,
        latency_batch_size=4,
        latency_memory_mb=0.001,
    )
    grid = translation_grid(args, data)
    assert [row["eval_pairs"] for row in grid] == [7, 7] and all(0 <= row["bleu"] <= 100 for row in grid)
    assert [row["latency_group"] for row in grid] == [0, 1]

    unsplit = TranslationDataArguments(train_file=train, max_train_samples=50, validation_split_percentage=10)
    recovering = CompressionArguments(model_name_or_path=str(tmp_path / "model"), output_dir="x", recovery_steps=1)
    recovering.seed = 7
    sources, _, _, train_encoded = _grid_data(recovering, unsplit, tokenizer)
    run_split = load_pairs(train_file=train, validation_split_percentage=10, seed=7)
    assert sources == list(run_split["validation"]["source"]) and len(train_encoded) == 50


def test_the_study_compresses_each_size_on_the_pairs_its_run_trained_and_was_scored_on(tmp_path):
    import yaml

    from hf_tbc.study.stages import StudyConfig
    from hf_tbc.tasks.registry import TASKS

    config = yaml.safe_load((REPO / "recipes" / "configs" / "mt_cpu_demo.yaml").read_text())
    config["translation"].update(seed=7, validation_split_percentage=3, max_train_samples=900)
    config["translation"].pop("validation_file", None)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    study = StudyConfig.from_yaml(str(path), data_dir="/data", output_dir=str(tmp_path / "out"))
    (_, _, translate), (_, _, compress) = TASKS["translation"].stages(study, study.sizes[0], ["launch"], ["python"])
    assert compress[1].endswith("compress.py")
    flags = dict(zip(compress[2::2], compress[3::2]))
    assert (flags["--seed"], flags["--validation_split_percentage"], flags["--max_train_samples"]) == ("7", "3", "900")
    assert "--validation_file" not in flags and flags["--train_file"] == "/data/multi30k-en-fr/train.tsv"


def test_an_int8_model_counts_as_many_parameters_as_its_fp32_parent():
    """The tied output layer's int8 copy is the embedding matrix, which the fp32 parameters already count."""
    model = tiny_model()
    assert model.config.tie_word_embeddings
    parent = model.num_parameters()
    assert QuantizedModelForSeq2SeqLM.quantize(model).num_parameters() == parent
