"""The compression grid of a translation model: every (feed-forward sparsity, quantization) variant built, saved,
reloaded and measured, as ``recipes/compress.py`` does for classifiers.

Each variant is measured on its own saved files: BLEU and chrF on the validation pairs, decoded as its saved
generation config says (beam search by default), parameters, bytes on disk, and latency per sentence, measured at the
end with every variant loaded and visited in turn: one source at a time (``latency_ms``, what a translation service
answering single requests pays, and what release by latency reads) and in batches of ``--latency_batch_size``
(``latency_ms_batched``, what a batch job pays per sentence).
One row per variant goes to ``compression.jsonl`` (``bleu`` where a classifier's row has ``accuracy``, and
``latency_ms`` per sentence), with ``bleu_vs_latency.png``, ``bleu_vs_size.png`` and ``bleu_vs_nonzero_parameters.png``.
Pruning is :func:`~hf_tbc.compress.seq2seq.prune_feed_forward` (``--pruning_method structured``) or, with
``--target_shapes``, :func:`~hf_tbc.compress.shape.prune_to_shape` (fewer encoder and decoder layers, a narrower
hidden size with whole heads, fewer feed-forward neurons), followed by recovery training on the translation loss
(``--recovery_time_budget`` or ``--recovery_steps``), which the dense model gets too; a pruned model recovers with
the dense model as its teacher (word-level distillation, :mod:`hf_tbc.compress.distillation`) unless
``--no_distill``. Each row records the teacher-forced validation loss before and after recovery, and the recovery's
seconds. Quantization is one of :data:`~hf_tbc.compress.seq2seq.SEQ2SEQ_QUANTIZATIONS` (PyTorch dynamic int8, or
ONNX Runtime graphs in fp32 or int8, decoded by :class:`~hf_tbc.compress.onnx_seq2seq.OnnxModelForSeq2SeqLM`).
Nothing is written unless the whole grid finishes.
"""

from __future__ import annotations

import gc
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.utils import logging

from ...compress.arguments import CompressionArguments, shape_variant_name, variant_name
from ...compress.grid import check_output_dir, latency_groups, memory_limit, staged_output
from ...compress.onnx_seq2seq import OnnxModelForSeq2SeqLM
from ...compress.plots import plot_compression
from ...compress.records import RECORD_FILE
from ...compress.seq2seq import (
    ONNX_METHODS,
    SEQ2SEQ_QUANTIZATIONS,
    QuantizedModelForSeq2SeqLM,
    layer_linear_weights,
    save_onnx_seq2seq,
)
from ...compress.shape import smaller_shapes
from ...compress.variants import size_on_disk
from ...errors import UsageError
from ...hardware import hardware_summary
from ..model_config import load_model_config
from .arguments import TranslationDataArguments
from .bleu import TRANSLATIONS_FILE, copy_source_scores, corpus_scores, decode, looping, write_translations
from .data import pairs_from_arguments, tokenize_pairs
from .recovery import build_variant
from .train import describe_decoding

logger = logging.get_logger(__name__)

TRANSLATION_PLOTS = {
    "bleu_vs_latency.png": "latency_ms_per_sentence",
    "bleu_vs_size.png": "size_bytes",
    "bleu_vs_nonzero_parameters.png": "nonzero_parameters",
}


def check_translation_model(model_name_or_path: str):
    """The checkpoint's config; ``UsageError`` unless it is an encoder-decoder."""
    config = load_model_config(model_name_or_path)
    if not getattr(config, "is_encoder_decoder", False):
        raise UsageError(f"{model_name_or_path} is a {config.model_type} model, not a translation encoder-decoder")
    return config


def check_translation_grid(args: CompressionArguments) -> None:
    """What can fail on bad input, checked before anything is built or written (and the translation defaults set)."""
    check_translation_model(args.model_name_or_path)
    args.for_translation()
    unknown = [method for method in args.methods if method not in SEQ2SEQ_QUANTIZATIONS]
    if unknown:
        raise UsageError(
            f"--quantization {unknown[0]} is for classifiers: translation models take "
            f"{', '.join(SEQ2SEQ_QUANTIZATIONS)}"
        )
    if args.pruning_methods != ["structured"] and any(value > 0 for value in args.sparsity_grid):
        raise UsageError(
            "translation models are pruned by removing feed-forward neurons: pass --pruning_method structured"
        )
    if args.pruning_schedule != "oneshot" or args.importance != "magnitude":
        raise UsageError("translation pruning is one-shot by magnitude: leave --pruning_schedule and --importance out")
    args.shape_names = smaller_shapes(args.shape_names, check_translation_model(args.model_name_or_path))
    check_output_dir(args)


def encode_sources(tokenizer, sources: list[str], max_source_length: Optional[int] = None, padding: bool = False):
    """``sources`` tokenized as training saw them: cut to ``max_source_length`` tokens (``--max_source_length``; a
    trained tokenizer has no length limit of its own, and a source longer than the model's position table would
    fail)."""
    cut = dict(truncation=True, max_length=max_source_length) if max_source_length else {}
    return tokenizer(sources, return_tensors="pt", padding=padding, **cut)


@torch.no_grad()
def translate(
    model, tokenizer, sources: list[str], batch_size: int = 64, max_source_length: Optional[int] = None, **options
) -> list[str]:
    """Translations of ``sources`` (each cut to ``max_source_length`` tokens), decoded as the model's generation
    config says unless ``options`` override it."""
    outputs = []
    for start in range(0, len(sources), batch_size):
        batch = encode_sources(tokenizer, sources[start : start + batch_size], max_source_length, padding=True)
        outputs.extend(decode(tokenizer, model.generate(**batch, **options)))
    return outputs


@torch.no_grad()
def latency_per_sentence(
    cells: dict,
    tokenizer,
    sources: list[str],
    batch_size: int = 1,
    rounds: int = 10,
    max_source_length: Optional[int] = None,
    tokenizers: Optional[dict] = None,
) -> dict:
    """Median ms per sentence of each ``name: (model, generate options)`` cell, the cells visited in turn so that
    machine noise hits all alike. ``batch_size`` 1: each of ``sources`` translated alone (the first warms each cell
    up); larger: the first ``batch_size`` sources translated together ``rounds`` times (after one warm-up), the
    batch's time divided by its sentences (what a batch job or a batching server pays per sentence). Sources are
    cut to ``max_source_length`` tokens, as in training, and encoded by ``tokenizer``, or by ``tokenizers[name]``
    for a cell named there (models trained apart each have their own)."""
    timings: dict[str, list[float]] = {name: [] for name in cells}
    encoders = {name: (tokenizers or {}).get(name, tokenizer) for name in cells}
    encoded_by = {}
    for encoder in {id(encoder): encoder for encoder in encoders.values()}.values():
        if batch_size == 1:
            batches = [encode_sources(encoder, [source], max_source_length) for source in sources]
        else:
            batches = [encode_sources(encoder, sources[:batch_size], max_source_length, padding=True)] * (rounds + 1)
        encoded_by[id(encoder)] = batches
    for index in range(len(sources) if batch_size == 1 else rounds + 1):
        for name, (model, options) in cells.items():
            encoded = encoded_by[id(encoders[name])][index]
            sentences = encoded["input_ids"].shape[0]
            start = time.perf_counter()
            model.generate(**encoded, **options)
            if index:
                timings[name].append((time.perf_counter() - start) * 1000 / sentences)
    return {name: statistics.median(values) for name, values in timings.items()}


def load_translation_variant(folder: Path):
    """A saved variant with its documented class: ``OnnxModelForSeq2SeqLM`` for ONNX graphs,
    ``QuantizedModelForSeq2SeqLM`` for PyTorch int8, else ``AutoModelForSeq2SeqLM``."""
    if OnnxModelForSeq2SeqLM.is_onnx(folder):
        return OnnxModelForSeq2SeqLM.from_pretrained(folder)
    if QuantizedModelForSeq2SeqLM.is_quantized(folder):
        return QuantizedModelForSeq2SeqLM.from_pretrained(folder)
    return AutoModelForSeq2SeqLM.from_pretrained(folder).eval()


def _measure(
    folder: Path,
    tokenizer,
    sources: list[str],
    references: list[str],
    source_model,
    parent_weights: int,
    max_source_length: int,
) -> dict:
    """The saved variant's scores and size; parameters are counted on ``source_model``, the PyTorch model it was
    saved from (an ONNX variant holds the same weights in graphs)."""
    model = load_translation_variant(folder)
    hypotheses = translate(model, tokenizer, sources, max_source_length=max_source_length)
    base = model.base if isinstance(model, QuantizedModelForSeq2SeqLM) else model
    if isinstance(model, OnnxModelForSeq2SeqLM):
        base = source_model
    parameters = (
        model.num_parameters()
        if isinstance(model, QuantizedModelForSeq2SeqLM)
        else sum(parameter.numel() for parameter in base.parameters())
    )
    scores = {
        **corpus_scores(hypotheses, references),
        "looping": looping(hypotheses),
        "distinct": round(len(set(hypotheses)) / max(len(hypotheses), 1), 4),
        "eval_pairs": len(sources),
        "sparsity": round(1.0 - layer_linear_weights(base) / parent_weights, 6) if parent_weights else 0.0,
        "parameters": parameters,
        "nonzero_parameters": parameters,
        "size_bytes": size_on_disk(folder),
    }
    # beside the weights, after they were measured: the output behind the BLEU, for paired tests between variants
    write_translations(folder / TRANSLATIONS_FILE.format(split="validation"), sources, references, hypotheses)
    return scores


def _save(model, tokenizer, folder: Path, method: str) -> dict:
    if method == "none":
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return {"method": "none", "bits": 32, "backend": "pytorch"}
    if method in ONNX_METHODS:
        done = save_onnx_seq2seq(model, folder, int8=method == "onnx-int8")
        tokenizer.save_pretrained(folder)
        return done
    QuantizedModelForSeq2SeqLM.quantize(model, method).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"method": method, "bits": 8, "backend": "pytorch"}


def _grid_data(args: CompressionArguments, data_args: TranslationDataArguments, tokenizer):
    """The grid's validation sources and references (the first ``max_eval_samples``) and those pairs tokenized,
    and the training pairs tokenized for recovery and importance (None where neither runs): the pairs the run trained
    and was scored on, split with the same ``--seed`` and ``--validation_split_percentage`` where there is no
    validation file, the training pairs cut to ``--max_train_samples``."""
    pairs = pairs_from_arguments(data_args, args.seed, test=False)
    validation = pairs["validation"]
    if data_args.max_eval_samples is not None:
        validation = validation.select(range(min(data_args.max_eval_samples, len(validation))))
    sources, references = list(validation["source"]), list(validation["target"])
    validation_encoded = tokenize_pairs(validation, tokenizer, data_args.max_source_length, data_args.max_target_length)
    train_encoded = None
    if args.needs_training_data:
        train_encoded = tokenize_pairs(
            pairs["train"], tokenizer, data_args.max_source_length, data_args.max_target_length
        )
    return sources, references, validation_encoded, train_encoded


def translation_grid(args: CompressionArguments, data_args: TranslationDataArguments) -> list[dict]:
    """Builds, saves, reloads and measures every variant of the translation model ``args.model_name_or_path``;
    returns the rows written to ``compression.jsonl``. ``data_args`` names the pairs (training pairs are needed for
    recovery and for the importance of ``--target_shapes``; BLEU and the validation loss are measured on the first
    ``max_eval_samples`` validation pairs)."""
    check_translation_grid(args)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    sources, references, validation_encoded, train_encoded = _grid_data(args, data_args, tokenizer)
    output_dir = Path(args.output_dir)
    rows, parent_weights = [], None
    builds = [("ffn", sparsity) for sparsity in args.sparsity_grid] + [("shape", name) for name in args.shape_names]
    with staged_output(output_dir) as staging:
        for kind, value in builds:
            if parent_weights is None:
                parent_weights = layer_linear_weights(AutoModelForSeq2SeqLM.from_pretrained(args.model_name_or_path))
            model, done = build_variant(
                kind, value, args, tokenizer, validation_encoded, train_encoded, staging / "recovery"
            )
            generation = model.generation_config
            for method in args.methods:
                if kind == "shape":
                    name = shape_variant_name(value, method)
                else:
                    name = variant_name(value, method, "structured")
                saved = _save(model, tokenizer, staging / name, method)
                row = {
                    "variant": name,
                    **saved,
                    **_measure(
                        staging / name,
                        tokenizer,
                        sources,
                        references,
                        model,
                        parent_weights,
                        data_args.max_source_length,
                    ),
                    **done,
                    "task": "translation",
                    "decoding": describe_decoding(
                        generation.num_beams or 1, generation.max_length, generation.no_repeat_ngram_size or 0
                    ),
                    "base_model": str(Path(args.model_name_or_path).resolve()),
                    "hardware": hardware_summary()["cpu"],
                }
                logger.warning(
                    f"{name}: BLEU {row['bleu']:.2f}, chrF {row['chrf']:.2f}, {row['size_bytes'] / 1e6:.2f} MB, "
                    f"validation loss {row['validation_loss']:.3f}"
                    + (f" ({row['loss_before_recovery']:.3f} before recovery)" if row.get("recovery") else "")
                )
                rows.append(row)
            del model
        shutil.rmtree(staging / "recovery", ignore_errors=True)
        _latency_together(rows, staging, tokenizer, sources, args, data_args.max_source_length)
        with (staging / RECORD_FILE).open("w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        copy = copy_source_scores(sources, references)["bleu"]
        label = Path(args.model_name_or_path).name
        for file, x in TRANSLATION_PLOTS.items():
            plot_compression({label: rows}, staging / file, x=x, majority=copy, y="bleu")
    for row in rows:
        row["path"] = str(output_dir / row["variant"])
    return rows


def _latency_together(
    rows: list[dict], staging: Path, tokenizer, sources: list[str], args, max_source_length: int
) -> None:
    """Latency per sentence of every variant, loaded together and visited in turn: one sentence at a time
    (``latency_ms``, what selects a variant by latency) and in batches of ``latency_batch_size``
    (``latency_ms_batched``). At most ``--latency_memory_mb`` of variants are loaded at once: a grid too large for
    that is measured in consecutive groups, each in turn (``latency_group`` records which)."""
    limit = memory_limit(args)
    groups = latency_groups(rows, limit)
    for index, group in enumerate(groups):
        models = {row["variant"]: (load_translation_variant(staging / row["variant"]), {}) for row in group}
        alone = latency_per_sentence(
            models, tokenizer, sources[: args.latency_sentences + 1], max_source_length=max_source_length
        )
        batched = latency_per_sentence(
            models, tokenizer, sources, args.latency_batch_size, args.latency_runs, max_source_length
        )
        del models
        gc.collect()
        for row in group:
            row["latency_ms"] = round(alone[row["variant"]], 3)
            row["latency_ms_per_sentence"] = row["latency_ms"]
            row["latency_sentences"] = min(args.latency_sentences, len(sources) - 1)
            row["latency_ms_batched"] = round(batched[row["variant"]], 3)
            row["latency_batch"] = [1, min(args.latency_batch_size, len(sources))]
            row["latency_rounds"] = args.latency_runs
            row["latency_threads"] = torch.get_num_threads()
            row["latency_group"] = index
    if len(groups) > 1:
        logger.warning(
            f"latency measured in {len(groups)} groups of variants, to stay under "
            f"{limit / 1e6:,.0f} MB of loaded models (--latency_memory_mb)"
        )
