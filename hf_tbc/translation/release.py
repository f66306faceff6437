"""Release of translation runs: an evaluated card (model-index ``translation``, BLEU and chrF on the test split)
built from the run's own records, and a Hub-ready folder.

The dense model is released as trained: hf-tbc's int8 paths (ONNX Runtime dynamic quantization of an exported
classifier, optimum-quanto behind hf-tbc's classifier wrapper) do not cover encoder-decoders with generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .. import model_cards
from ..budget import format_duration
from ..errors import UsageError

TRANSLATION_TEMPLATE = Path(model_cards.__file__).resolve().parent / "translation_card.md"
LAYER_NORM = {"m2m_100": "LayerNorm before each sublayer, sinusoidal positions",
              "mbart": "LayerNorm before each sublayer, learned positions",
              "marian": "LayerNorm after each sublayer, sinusoidal positions"}


@dataclass
class TranslationRun:
    """One run_translation.py output to release, with its records."""

    folder: Path
    summary: dict  # run_summary.json
    results: dict  # eval_results.json
    repo_id: str = ""

    @property
    def size_name(self) -> str:
        return Path(str(self.summary["model_size"])).name

    def default_repo_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.size_name}-{self.summary['source_lang']}-{self.summary['target_lang']}"


def load_translation_run(folder: Union[str, Path]) -> TranslationRun:
    """The finished run in ``folder``; a one-line error naming what is missing otherwise."""
    folder = Path(folder).resolve()
    records = {}
    for name in ("run_summary.json", "eval_results.json"):
        path = folder / name
        if not path.is_file():
            raise UsageError(f"missing record {path}: pass a folder written by recipes/run_translation.py that finished")
        records[name] = json.loads(path.read_text())
    if records["run_summary.json"].get("task") != "translation" or not records["eval_results.json"].get("model_saved"):
        raise UsageError(f"{folder} holds no finished translation run (a preempted or other run): finish it first")
    return TranslationRun(folder, records["run_summary.json"], records["eval_results.json"])


def _scores(run: TranslationRun) -> tuple[str, dict]:
    split = "test" if "test" in run.results["splits"] else "validation"
    return split, run.results["splits"][split]


def translation_card_data(run: TranslationRun, dataset_id: str, dataset_config: Optional[str], dataset_split: str,
                          license: str) -> ModelCardData:
    """Metadata: pipeline ``translation``, the language pair, and a model-index with BLEU and chrF."""
    _, scores = _scores(run)
    languages = [run.summary["source_lang"], run.summary["target_lang"]]
    results = [EvalResult(task_type="translation", task_name="Translation", dataset_type=dataset_id,
                          dataset_name=f"{dataset_id} {dataset_config}" if dataset_config else dataset_id,
                          dataset_config=dataset_config, dataset_split=dataset_split, metric_type=metric,
                          metric_name=name, metric_value=round(float(scores[metric]), 2))
               for metric, name in (("bleu", "BLEU"), ("chrf", "chrF"))]
    return ModelCardData(model_name=run.repo_id.split("/")[-1], license=license, library_name="transformers",
                         pipeline_tag="translation", language=languages,
                         tags=["train-large-then-compress", "hf-tbc", run.summary["config"]["model_type"], "translation"],
                         datasets=[dataset_id], metrics=["bleu", "chrf"], eval_results=results)


def render_translation_card(run: TranslationRun, dataset_id: str, dataset_config: Optional[str], dataset_split: str,
                            license: str = "apache-2.0", template: Union[str, Path] = TRANSLATION_TEMPLATE) -> ModelCard:
    """The card, with every figure read from the run's records."""
    summary, results = run.summary, run.results
    config = summary["config"]
    split, scores = _scores(run)
    hardware = summary["hardware"]
    samples = scores.get("samples") or [{"source": "A man is riding a bicycle down the street."}]
    values = {
        "model_name": run.repo_id.split("/")[-1],
        "repo_id": run.repo_id,
        "summary": (f"A {summary['source_lang']}→{summary['target_lang']} translation Transformer ({run.size_name}) "
                    f"trained from scratch in {format_duration(summary['train_s'])}: {scores['bleu']:.1f} BLEU on the "
                    f"{split} split ({dataset_id}, greedy decoding)."),
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
        "data": _public_name(summary["dataset"]),
        "train_pairs": summary["train_pairs"],
        "budget": format_duration(summary["time_budget_s"]) if summary.get("time_budget_s") else "none (step-limited)",
        "hardware": (hardware.get("accelerator") or f"{hardware.get('cpu')} ({hardware.get('cpu_count')} cores, CPU only)"),
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
        "limitations": "\n".join(f"- {note}" for note in (
            f"Trained and evaluated on {_public_name(summary['dataset'])} only: short image captions. Quality on other "
            "text is unmeasured and will be far lower.",
            "A small research model trained under a short compute budget; do not rely on its translations.",
            "Released dense: hf-tbc's int8 paths do not yet cover encoder-decoders with generation.")),
    }
    data = translation_card_data(run, dataset_id, dataset_config, dataset_split, license)
    return ModelCard.from_template(data, template_path=str(template), **values)


def _public_name(source) -> Optional[str]:
    """A dataset id as is; local files reduced to their last two path parts (no home folders in public cards)."""
    if source is None:
        return None
    parts = [part.strip() for part in str(source).split(",") if part.strip()]
    if not any(part.startswith(("/", ".", "~")) for part in parts):
        return str(source)
    return ", ".join("/".join(Path(part).parts[-2:]) for part in parts) + " (local files)"
