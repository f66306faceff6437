"""Model cards of released classifiers: YAML metadata (``huggingface_hub.ModelCardData`` with a model-index) and a body
rendered from ``model_cards/model_card.md``, every figure read from the variant's records, no local path or folder
name written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ... import model_cards
from ...budget import format_duration
from ...compress.records import pruning_of, teacher_phrase
from ...errors import UsageError
from ...hardware import describe_hardware
from ...release.leaks import dataset_line, is_local_path
from .release import Variant

DEFAULT_TEMPLATE = Path(model_cards.__file__).resolve().parent / "model_card.md"
METHOD_TAGS = {
    "none": ["pytorch"],
    "onnx-int8": ["onnx", "int8", "dynamic-quantization"],
    "quanto-int8": ["quanto", "int8", "weight-only-quantization"],
    "quanto-int4": ["quanto", "int4", "weight-only-quantization"],
    "quanto-int2": ["quanto", "int2", "weight-only-quantization"],
}
PRUNING_TAGS = {
    "unstructured": ["magnitude-pruning", "unstructured-pruning"],
    "structured": ["structured-pruning"],
    "shape": ["structured-pruning", "width-pruning"],
}
# the library a user needs to load each kind: ONNX variants are plain ONNX files (hf-tbc's loader or optimum-onnx's
# run them), quanto variants load only through hf-tbc's wrapper class
LIBRARY = {"pytorch": "transformers", "onnx": "onnx", "quanto": "hf-tbc"}


def card_data(
    variant: Variant,
    dataset_id: str,
    dataset_config: Optional[str],
    dataset_split: str,
    license: str,
    corpus_ids: tuple[str, ...] = (),
) -> ModelCardData:
    """The YAML metadata: license, library, pipeline, tags, datasets (``corpus_ids``: the pretraining corpus on the
    Hub, then the task data), base_model and the model-index."""
    name = variant.repo_id.split("/")[-1]
    result = EvalResult(
        task_type="text-classification",
        task_name="Text Classification",
        dataset_type=dataset_id,
        dataset_name=f"{dataset_id} {dataset_config}" if dataset_config else dataset_id,
        dataset_config=dataset_config,
        dataset_split=dataset_split,
        metric_type="accuracy",
        metric_name="Accuracy",
        metric_value=round(float(variant.row["accuracy"]), 4),
    )
    return ModelCardData(
        model_name=name,
        license=license,
        library_name=LIBRARY[variant.kind],
        pipeline_tag="text-classification",
        tags=[
            "train-large-then-compress",
            "hf-tbc",
            "roberta",
            *METHOD_TAGS[variant.row["method"]],
            *PRUNING_TAGS.get(pruning_of(variant.row), []),
            *(["sparse"] if stored_sparse(variant.row) else []),
            *(["distilled"] if variant.row.get("distilled") else []),
        ],
        datasets=list(dict.fromkeys([*corpus_ids, dataset_id])),  # what it was trained on, then evaluated on
        base_model=variant.parent_repo_id,
        # the Hub's name for a quantized copy of base_model (it guesses the relation otherwise)
        base_model_relation="quantized" if variant.parent_repo_id and variant.row.get("bits", 32) < 32 else None,
        metrics=["accuracy"],
        eval_results=[result],
    )


def stored_sparse(row: dict) -> bool:
    """Whether the released weights hold unstructured zeros as stored: pruning survived the quantization (it does
    not survive quanto int4, whose zero points turn pruned weights into small nonzero values)."""
    return pruning_of(row) == "unstructured" and row["sparsity"] >= 0.9 * row["target_sparsity"]


def pretraining_datasets(variant: Variant, named: Optional[list[str]] = None) -> list[str]:
    """Hub ids of the pretraining corpus: the ``--dataset_name`` it was read from, else the ids given for a local
    corpus (``--card_pretraining_datasets``); none for local files nobody named."""
    record = variant.pretraining or {}
    return [record["dataset_name"]] if record.get("dataset_name") else list(named or [])


def corpus_description(record: dict, named: Optional[list[str]] = None) -> str:
    """The pretraining corpus as the card names it: a Hub dataset with its config, the Hub ids given for a local
    corpus (``--card_pretraining_datasets``), the built-in corpus, or, for local files nobody named, how many
    there were (their folders' names are private)."""
    if record.get("dataset_name"):
        config = record.get("dataset_config_name")
        return f"{record['dataset_name']}" + (f" ({config})" if config else "")
    files = record.get("corpus_files") or [part for part in str(record["corpus"]).split(",") if part.strip()]
    local = [path for path in files if is_local_path(path)]
    if named:
        return ", ".join(named) + (" (local copies)" if local else "")
    if local:
        return f"{len(local)} local text file{'s' if len(local) > 1 else ''}, not named for this card"
    return str(record["corpus"])


def _loading_snippet(variant: Variant) -> str:
    example = "A gripping, beautifully acted film."
    if variant.kind == "onnx":
        load = (
            "from hf_tbc import OnnxModelForSequenceClassification  # pip install hf-tbc\n"
            "from transformers import AutoTokenizer\n\n"
            "# or, with optimum-onnx installed: from optimum.onnxruntime import ORTModelForSequenceClassification\n"
            f'model = OnnxModelForSequenceClassification.from_pretrained("{variant.repo_id}")'
        )
    elif variant.kind == "quanto":
        load = (
            "import torch  # pip install hf-tbc\nfrom hf_tbc.compress import QuantizedModelForSequenceClassification\n"
            "from transformers import AutoTokenizer\n\n"
            f'model = QuantizedModelForSequenceClassification.from_pretrained("{variant.repo_id}")'
        )
    else:
        load = (
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
            f'model = AutoModelForSequenceClassification.from_pretrained("{variant.repo_id}")'
        )
    run = (
        "with torch.no_grad():  # quanto rejects torch.inference_mode()\n    logits = model(**inputs).logits"
        if variant.kind == "quanto"
        else "logits = model(**inputs).logits"
    )
    return (
        f'{load}\ntokenizer = AutoTokenizer.from_pretrained("{variant.repo_id}")\n'
        f'inputs = tokenizer("{example}", return_tensors="pt")\n{run}\n'
        "print(model.config.id2label[int(logits.argmax(-1))])"
    )


def _compression_text(variant: Variant) -> str:
    row = variant.row
    parts = []
    gradual = " gradually during finetuning (cubic schedule)" if row.get("schedule") == "gradual" else ""
    if pruning_of(row) == "unstructured":
        parts.append(
            f"Magnitude pruning ({row.get('pruning_scope') or 'layer'} scope){gradual} of the encoder's "
            f"attention and feed-forward weights to {100 * row['sparsity']:.1f} % zeros, measured on the "
            "released weights."
        )
    elif pruning_of(row) == "structured":
        parts.append(
            f"Structured pruning ({row.get('importance', 'magnitude')} importance){gradual}: "
            f"{len(row.get('removed_layers') or [])} of {row.get('parent_layers', '?')} encoder layers and "
            f"{row.get('parent_intermediate_size', 0) - row.get('intermediate_size', 0)} of "
            f"{row.get('parent_intermediate_size', '?')} feed-forward neurons per layer removed, "
            f"{100 * row['sparsity']:.1f} % of the encoder's linear weights: a smaller dense model of "
            f"{row.get('num_hidden_layers')} layers with intermediate size {row.get('intermediate_size')}, "
            "loaded by the stock classes."
        )
    elif pruning_of(row) == "shape":
        parts.append(
            f"Pruned to the shape {row['shape']} from {row.get('parent_layers', '?')} layers, hidden "
            f"{row.get('parent_hidden_size', '?')}: the layers that changed the hidden states least, and the hidden "
            "channels, whole attention heads and feed-forward neurons least active on training examples, removed. "
            f"A stock model of {row.get('num_hidden_layers')} layers, hidden {row.get('hidden_size')}, "
            f"{row.get('num_attention_heads')} heads, intermediate size {row.get('intermediate_size')}."
        )
    if pruning_of(row) and row.get("recovery"):
        took = f" for {row['recovery_budget']}" if row.get("recovery_budget") else ""
        teacher = teacher_phrase(row, "class distribution")
        parts.append(f"Then finetuned again on the task{took} with the pruned structure fixed (recovery){teacher}.")
    if row["method"] == "onnx-int8":
        parts.append(
            f"Exported to ONNX and quantized with ONNX Runtime dynamic int8 (weights int8, activations "
            f"quantized at run time; configuration for {row.get('instruction_set', 'this CPU')})."
        )
    elif row["method"].startswith("quanto"):
        parts.append(
            f"Weight-only quantization of the linear layers to int{row['bits']} with optimum-quanto; "
            "activations stay in floating point."
        )
    return (
        " ".join(parts)
        or "No compression: this is the dense model (the baseline its compressed variants are compared with)."
    )


def _limitations(variant: Variant, dataset: str) -> str:
    notes = [
        f"Finetuned and evaluated on {dataset}: accuracy elsewhere is unmeasured.",
        "A small research model trained under a short compute budget; not for decisions about people.",
    ]
    if stored_sparse(variant.row):
        notes.append(
            "Unstructured zeros are stored densely: they shrink neither the file nor the latency on dense kernels."
        )
    elif pruning_of(variant.row) == "unstructured":
        notes.append(
            f"Pruned to {100 * variant.row['target_sparsity']:.0f} % zeros, but the quantized weights as stored "
            f"are only {100 * variant.row['sparsity']:.1f} % zeros: the quantization did not keep the pruned "
            "weights at exactly zero."
        )
    if variant.kind == "quanto":
        notes.append("quanto saves memory, not time, on CPUs, and needs the hf-tbc package to load.")
    return "\n".join(f"- {note}" for note in notes)


def _pretraining_values(pretraining: Optional[dict], corpus_ids: Optional[list[str]]) -> Optional[dict]:
    """What the card says of pretraining, from its ``run_summary.json`` (None when hf-tbc did not pretrain it)."""
    if pretraining is None:
        return None
    budget = pretraining.get("time_budget_s")
    return {
        "budget": format_duration(budget) if budget else "none (step-limited)",
        "corpus": corpus_description(pretraining, corpus_ids),
        "hardware": describe_hardware(pretraining["hardware"], versions=False),
        "train_time": format_duration(pretraining["train_s"]),
        "total_time": format_duration(pretraining["total_s"]),
        "steps": pretraining["steps"],
        "tokens": pretraining["tokens"],
        "final_eval_loss": pretraining["final_eval_loss"],
        "stop_reason": pretraining["stop_reason"],
    }


def render_card(
    variant: Variant,
    dataset_id: str,
    dataset_config: Optional[str],
    dataset_split: str,
    license: str = "apache-2.0",
    template: Union[str, Path] = DEFAULT_TEMPLATE,
    pretraining_corpus_ids: Optional[list[str]] = None,
    task: Optional[str] = None,
) -> ModelCard:
    """The model card, rendered from ``template`` with figures from the variant's records only; ``task`` is the
    task's public name (:meth:`ReleaseArguments.public_task`), and no local path or folder name is written."""
    row, finetuning, pretraining = variant.row, variant.finetuning, variant.pretraining
    config = json.loads((variant.folder / "config.json").read_text())
    task = task or finetuning.get("task_name") or dataset_config or dataset_id.split("/")[-1]
    dataset = dataset_line(dataset_id, dataset_config)
    parent = str(finetuning.get("model_name_or_path") or "")
    values = {
        "model_name": variant.repo_id.split("/")[-1],
        "summary": (
            f"A RoBERTa text classifier ({variant.size_name}) for {task}, variant "
            f"`{row['variant']}`: {100 * row['accuracy']:.2f} % accuracy in {row['size_bytes'] / 1e6:.2f} MB of "
            "weights."
        ),
        "architecture": (config.get("architectures") or ["RobertaForSequenceClassification"])[0],
        "size_name": variant.size_name,
        "num_layers": config.get("num_hidden_layers"),
        "hidden_size": config.get("hidden_size"),
        "num_heads": config.get("num_attention_heads"),
        "parameters": row["parameters"],
        "nonzero_parameters": row["nonzero_parameters"],
        "variant": row["variant"],
        "parent_repo": variant.parent_repo_id,
        "pretrained_from": None if is_local_path(parent) else parent,  # a Hub id; a local folder stays unnamed
        "pretraining": _pretraining_values(pretraining, pretraining_corpus_ids),
        "finetuning": {
            "task": task,
            "data": dataset,
            "train_examples": finetuning["train_examples"],
            "steps": finetuning["steps"],
            "train_time": format_duration(finetuning["train_s"]),
            "budget": format_duration(finetuning["time_budget_s"]) if finetuning.get("time_budget_s") else None,
        },
        "compression_text": _compression_text(variant),
        "eval_dataset": dataset,
        "eval_split": dataset_split,
        "accuracy": row["accuracy"],
        "sparsity": row["sparsity"],
        "size_bytes": row["size_bytes"],
        "latency_ms": row["latency_ms"],
        "latency_batch": row["latency_batch"],
        "latency_threads": row["latency_threads"],
        "latency_hardware": row.get("hardware", "unrecorded CPU"),
        "loading_snippet": _loading_snippet(variant),
        "limitations": _limitations(variant, dataset),
    }
    optional = ("parent_repo", "pretraining", "pretrained_from")
    empty = [key for key, value in values.items() if value in ("", None, []) and key not in optional]
    if empty:
        raise UsageError(
            f"the card for {row['variant']} would have empty fields ({', '.join(empty)}): complete the records"
        )
    corpus = tuple(pretraining_datasets(variant, pretraining_corpus_ids))
    data = card_data(variant, dataset_id, dataset_config, dataset_split, license, corpus)
    return ModelCard.from_template(data, template_path=str(template), **values)
