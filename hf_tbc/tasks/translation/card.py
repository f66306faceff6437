"""Release of translation runs: an evaluated card (model-index ``translation``, BLEU and chrF on the test split)
built from the run's own records, and a Hub-ready folder.

The dense model is released as trained: hf-tbc's int8 paths (ONNX Runtime dynamic quantization of an exported
classifier, optimum-quanto behind hf-tbc's classifier wrapper) do not cover encoder-decoders with generation. The
Hub folder holds the model files, the card and :func:`public_translation_record`; the translations file, curves
and local records stay behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ... import model_cards
from ...budget import format_duration
from ...public import dataset_line
from .release import TranslationRun

TRANSLATION_TEMPLATE = Path(model_cards.__file__).resolve().parent / "translation_card.md"
LAYER_NORM = {
    "m2m_100": "LayerNorm before each sublayer, sinusoidal positions",
    "mbart": "LayerNorm before each sublayer, learned positions",
    "marian": "LayerNorm after each sublayer, sinusoidal positions",
}


def _scores(run: TranslationRun) -> tuple[str, dict]:
    split = "test" if "test" in run.results["splits"] else "validation"
    return split, run.results["splits"][split]


def translation_card_data(
    run: TranslationRun, dataset_id: str, dataset_config: Optional[str], dataset_split: str, license: str
) -> ModelCardData:
    """Metadata: pipeline ``translation``, the language pair, and a model-index with BLEU and chrF."""
    _, scores = _scores(run)
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
    return ModelCardData(
        model_name=run.repo_id.split("/")[-1],
        license=license,
        library_name="transformers",
        pipeline_tag="translation",
        language=languages,
        tags=["train-large-then-compress", "hf-tbc", run.summary["config"]["model_type"], "translation"],
        datasets=[dataset_id],
        metrics=["bleu", "chrf"],
        eval_results=results,
    )


def render_translation_card(
    run: TranslationRun,
    dataset_id: str,
    dataset_config: Optional[str],
    dataset_split: str,
    license: str = "apache-2.0",
    template: Union[str, Path] = TRANSLATION_TEMPLATE,
) -> ModelCard:
    """The card, with every figure read from the run's records."""
    summary, results = run.summary, run.results
    config = summary["config"]
    split, scores = _scores(run)
    hardware = summary["hardware"]
    samples = scores.get("samples") or [{"source": "A man is riding a bicycle down the street."}]
    values = {
        "model_name": run.repo_id.split("/")[-1],
        "repo_id": run.repo_id,
        "summary": (
            f"A {summary['source_lang']}→{summary['target_lang']} translation Transformer ({run.size_name}) "
            f"trained from scratch in {format_duration(summary['train_s'])}: {scores['bleu']:.1f} BLEU on the "
            f"{split} split ({dataset_id}, greedy decoding)."
        ),
        "architecture": json.loads((run.folder / "config.json").read_text())["architectures"][0],
        "layer_norm": LAYER_NORM.get(config["model_type"], config["model_type"]),
        "size_name": run.size_name,
        "encoder_layers": config["encoder_layers"],
        "decoder_layers": config["decoder_layers"],
        "hidden_size": config["d_model"],
        "num_heads": config["encoder_attention_heads"],
        "parameters": summary["parameters"],
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
        "decoding": results["decoding"],
        "scores": [{"split": name, **value} for name, value in results["splits"].items()],
        "copy_scores": [{"split": name, **value} for name, value in results["copy_source"].items()],
        "example_source": samples[0]["source"].replace('"', "'"),
        "limitations": "\n".join(
            f"- {note}"
            for note in (
                f"Trained and evaluated on {dataset_line(dataset_id, dataset_config)} only. Quality on other text is "
                "unmeasured and will be far lower.",
                "A small research model trained under a short compute budget; do not rely on its translations.",
                "Released dense: hf-tbc's int8 paths do not yet cover encoder-decoders with generation.",
            )
        ),
    }
    data = translation_card_data(run, dataset_id, dataset_config, dataset_split, license)
    return ModelCard.from_template(data, template_path=str(template), **values)
