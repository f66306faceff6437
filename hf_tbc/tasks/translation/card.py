"""Release of translation runs: an evaluated card (model-index ``translation``, BLEU and chrF on the test split)
built from the run's own records, and a Hub-ready folder.

A trained run is released dense; a variant of a compression grid (feed-forward neurons removed, int8) is released with
its own measured row: BLEU and chrF on the validation pairs the grid decoded, latency per sentence and size, next
to the grid's dense model. The Hub folder holds the model files, the card and the public record; the translations
file, curves and local records stay behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ... import model_cards
from ...budget import format_duration
from ...release.leaks import dataset_line
from .release import TranslationRun, TranslationVariant

TRANSLATION_TEMPLATE = Path(model_cards.__file__).resolve().parent / "translation_card.md"
LAYER_NORM = {
    "m2m_100": "LayerNorm before each sublayer, sinusoidal positions",
    "mbart": "LayerNorm before each sublayer, learned positions",
    "marian": "LayerNorm after each sublayer, sinusoidal positions",
}


def _scores(run: TranslationRun, variant: Optional[TranslationVariant] = None) -> tuple[str, dict]:
    if variant is not None:
        return "validation", variant.row
    split = "test" if "test" in run.results["splits"] else "validation"
    return split, run.results["splits"][split]


def _compression(variant: TranslationVariant) -> dict:
    """The card's compression section: what was done, and the variant against the grid's dense model."""
    from ...compress.records import own_dense, read_records, teacher_phrase

    row = variant.row
    dense = own_dense(read_records(variant.folder.parent)) or row
    done = []
    if row.get("pruning_method") == "shape":
        parent = row["parent_shape"]
        done.append(
            f"pruned to the shape of {row['shape']} from {parent['encoder']} encoder and {parent['decoder']} decoder "
            f"layers, hidden {parent['hidden']}, {parent['heads']} heads, {parent['ffn']} feed-forward neurons: the "
            "layers that changed the hidden states least, and the hidden channels, whole attention heads and "
            "feed-forward neurons least active on training pairs, removed (a stock model of the smaller config)"
        )
    elif row.get("target_sparsity"):
        encoder, decoder = row["parent_ffn_dim"]
        done.append(
            f"{row['target_sparsity']:.0%} of the feed-forward neurons of every layer removed (encoder "
            f"{encoder}→{row['encoder_ffn_dim']}, decoder {decoder}→{row['decoder_ffn_dim']}, by weight magnitude)"
        )
    if row.get("recovery"):
        budget = row.get("recovery_budget")
        seconds = f" ({format_duration(row['recovery_s'])} measured)" if row.get("recovery_s") else ""
        teacher = teacher_phrase(row, "next-token distributions")
        before = (
            f"; validation loss {row['loss_before_recovery']:.3f} before recovery, {row['validation_loss']:.3f} after"
            if row.get("loss_before_recovery") is not None and row.get("validation_loss") is not None
            else ""
        )
        done.append(
            f"trained further{f' for {budget}' if budget else ''}{seconds} on the translation loss to recover"
            f"{teacher}, as the grid's dense model was (without a teacher){before}"
        )
    if row["method"] == "torch-int8":
        done.append("linear layers quantized to int8 (torch-int8: PyTorch dynamic quantization)")
    elif row["method"] == "onnx-int8":
        done.append(
            "exported to ONNX (an encoder graph and a one-step decoder graph) and quantized to int8 by ONNX Runtime "
            f"(dynamic int8 for {row.get('instruction_set', 'this CPU')}), decoded by hf-tbc's greedy and beam search"
        )
    elif row["method"] == "onnx":
        done.append("exported to ONNX in fp32 (an encoder graph and a one-step decoder graph), run by ONNX Runtime")
    what = "; ".join(done) or "none (the dense model of the grid)"
    return {
        "what": what[0].upper() + what[1:],
        "rows": [
            {"name": name, **{key: item[key] for key in ("bleu", "chrf", "latency_ms", "size_bytes", "parameters")}}
            for name, item in (("this model", row), ("dense fp32, same grid", dense))
        ],
        "eval_pairs": row["eval_pairs"],
        "latency_sentences": row.get("latency_sentences"),
        # the class the "How to use" section loads it with
        "loader": "onnx" if row["method"].startswith("onnx") else "torch-int8" if row["method"] != "none" else None,
    }


def card_data(
    run: TranslationRun,
    dataset_id: str,
    dataset_config: Optional[str],
    dataset_split: str,
    license: str,
    variant: Optional[TranslationVariant] = None,
) -> ModelCardData:
    """Metadata: pipeline ``translation``, the language pair, and a model-index with BLEU and chrF (a variant's on
    the validation pairs its grid decoded)."""
    split, scores = _scores(run, variant)
    if variant is not None:
        dataset_split = split
    languages = [run.summary["source_lang"], run.summary["target_lang"]]
    results = [
        EvalResult(
            task_type="translation",
            task_name="Translation",
            dataset_type=dataset_id,
            dataset_name=f"{dataset_id} {dataset_config}" if dataset_config else dataset_id,
            dataset_config=dataset_config,
            dataset_split=dataset_split,
            metric_type=metric,
            metric_name=name,
            metric_value=round(float(scores[metric]), 2),
        )
        for metric, name in (("bleu", "BLEU"), ("chrf", "chrF"))
    ]
    tags = ["train-large-then-compress", "hf-tbc", run.summary["config"]["model_type"], "translation"]
    pruned = variant is not None and bool(variant.row.get("target_sparsity"))
    if variant is not None:
        tags += ["pruned"] * pruned + ["distilled"] * bool(variant.row.get("distilled"))
        tags += ["int8"] * (variant.row.get("bits") == 8) + ["onnx"] * variant.row["method"].startswith("onnx")
    parent = variant.parent_repo_id if variant is not None else None
    return ModelCardData(
        base_model=parent,
        # the Hub's name for a quantized copy of base_model (it guesses the relation otherwise)
        base_model_relation="quantized" if parent and variant.row.get("bits", 32) < 32 and not pruned else None,
        model_name=(variant or run).repo_id.split("/")[-1],
        license=license,
        library_name="onnx" if variant is not None and variant.row["method"].startswith("onnx") else "transformers",
        pipeline_tag="translation",
        language=languages,
        tags=tags,
        datasets=[dataset_id],
        metrics=["bleu", "chrf"],
        eval_results=results,
    )


def _size(run: TranslationRun, variant: Optional[TranslationVariant]) -> tuple[str, dict]:
    """The size the card names and the config its architecture table shows: a variant pruned to a smaller shape is
    its run's size "pruned to" that shape, with its own config."""
    if variant is None or not (variant.folder / "config.json").is_file():
        return run.size_name, run.summary["config"]
    shape = json.loads((variant.folder / "config.json").read_text())
    if variant.row.get("shape"):
        return f"{run.size_name} pruned to {variant.row['shape']}", shape
    return run.size_name, shape


def render_card(
    run: TranslationRun,
    dataset_id: str,
    dataset_config: Optional[str],
    dataset_split: str,
    license: str = "apache-2.0",
    template: Union[str, Path] = TRANSLATION_TEMPLATE,
    variant: Optional[TranslationVariant] = None,
) -> ModelCard:
    """The card, with every figure read from the run's records (and a compressed ``variant``'s row)."""
    summary, results = run.summary, run.results
    config = summary["config"]
    size, shape = _size(run, variant)
    split, scores = _scores(run, variant)
    repo_id = (variant or run).repo_id
    decoding = variant.row["decoding"] if variant is not None else results["decoding"]
    described = (
        f"{scores['bleu']:.1f} BLEU on the first {scores['eval_pairs']:,} validation pairs"
        if variant is not None
        else f"{scores['bleu']:.1f} BLEU on the {split} split"
    )
    hardware = summary["hardware"]
    samples = scores.get("samples") or [{"source": "A man is riding a bicycle down the street."}]
    values = {
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "summary": (
            f"A {'compressed ' if variant is not None else ''}{summary['source_lang']}→{summary['target_lang']} "
            f"translation Transformer ({size}) trained from scratch in {format_duration(summary['train_s'])}"
            f": {described} ({dataset_id}, {decoding.split(', at most')[0]} decoding)."
        ),
        "compression": _compression(variant) if variant is not None else None,
        "architecture": json.loads((run.folder / "config.json").read_text())["architectures"][0],
        "layer_norm": LAYER_NORM.get(config["model_type"], config["model_type"]),
        "size_name": size,
        "encoder_layers": shape["encoder_layers"],
        "decoder_layers": shape["decoder_layers"],
        "hidden_size": shape["d_model"],
        "num_heads": shape["encoder_attention_heads"],
        "parameters": variant.row["parameters"] if variant is not None else summary["parameters"],
        "vocab_size": config["vocab_size"],
        "source_lang": summary["source_lang"],
        "target_lang": summary["target_lang"],
        "data": dataset_line(dataset_id, dataset_config),
        "train_pairs": summary["train_pairs"],
        "budget": format_duration(summary["time_budget_s"]) if summary.get("time_budget_s") else "none (step-limited)",
        "hardware": (
            hardware.get("accelerator") or f"{hardware.get('cpu')} ({hardware.get('cpu_count')} cores, CPU only)"
        ),
        "train_time": format_duration(summary["train_s"]),
        "eval_time": format_duration(summary["eval_s"]),
        "steps": summary["steps"],
        "learning_rate": summary["learning_rate"],
        "warmup": f"{100 * summary['warmup_ratio']:.0f} %",
        "schedule": summary["schedule"],
        "label_smoothing": summary["label_smoothing_factor"],
        "stop_reason": summary["stop_reason"],
        "decoding": decoding,
        "scores": (
            [{"split": f"validation, first {scores['eval_pairs']:,} pairs", **scores, "examples": scores["eval_pairs"]}]
            if variant is not None
            else [{"split": name, **value} for name, value in results["splits"].items()]
        ),
        # copying the source was scored on whole splits: a variant's figures are of the grid's first pairs
        "copy_scores": []
        if variant is not None
        else [{"split": name, **value} for name, value in results["copy_source"].items()],
        "example_source": samples[0]["source"].replace('"', "'"),
        "limitations": "\n".join(
            f"- {note}"
            for note in (
                f"Trained and evaluated on {dataset_line(dataset_id, dataset_config)} only. Quality on other text is "
                "unmeasured and will be far lower.",
                "A small research model trained under a short compute budget; do not rely on its translations.",
            )
        ),
    }
    data = card_data(run, dataset_id, dataset_config, dataset_split, license, variant)
    return ModelCard.from_template(data, template_path=str(template), **values)
