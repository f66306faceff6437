"""Release: evaluated model cards built from the run records, and one Hub-ready folder per variant.

Every figure in a card comes from a record another recipe wrote (``run_summary.json`` of pretraining,
``eval_results.json`` of finetuning, the variant's row in ``compression.jsonl``), never from a typed number.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.utils import logging

from . import model_cards
from .budget import format_duration
from .errors import UsageError
from .records import pruning_of, read_records
from .variants import variant_kind

logger = logging.get_logger(__name__)

SELECT_BY = {"latency": ("latency_ms", 1.0, "ms"), "size": ("size_bytes", 1e6, "MB"),
             "nonzero_parameters": ("nonzero_parameters", 1.0, "nonzero parameters")}
DEFAULT_TEMPLATE = Path(model_cards.__file__).resolve().parent / "model_card.md"
METHOD_TAGS = {
    "none": ["pytorch"],
    "onnx-int8": ["onnx", "int8", "dynamic-quantization"],
    "quanto-int8": ["quanto", "int8", "weight-only-quantization"],
    "quanto-int4": ["quanto", "int4", "weight-only-quantization"],
    "quanto-int2": ["quanto", "int2", "weight-only-quantization"],
}
PRUNING_TAGS = {"unstructured": ["magnitude-pruning", "unstructured-pruning"], "structured": ["structured-pruning"]}
# the library a user needs to load each kind: ONNX variants are plain ONNX files (hf-tbc's loader or optimum-onnx's
# run them), quanto variants load only through hf-tbc's wrapper class
LIBRARY = {"pytorch": "transformers", "onnx": "onnx", "quanto": "hf-tbc"}


@dataclass
class ReleaseArguments:
    """What to release and where; ``HfArgumentParser`` turns each field into a flag."""

    output_dir: str = field(metadata={"help": "Where the repo folders (weights, tokenizer, README.md) are written."})
    variants: Optional[list[str]] = field(default=None, metadata={"help": "Variant folders written by compress.py."})
    compression_dirs: Optional[list[str]] = field(
        default=None, metadata={"help": "compress.py outputs: the most accurate variant of each under --limit."})
    select_by: str = field(default="latency", metadata={
        "help": "What --limit bounds when choosing from --compression_dirs: latency (ms per measured batch), size "
                "(MB of weight files) or nonzero_parameters.", "choices": list(SELECT_BY)})
    limit: Optional[float] = field(default=None, metadata={"help": "Most a chosen variant may cost by --select_by; "
                                                                   "a base model with no variant under it is skipped."})
    max_size_mb: Optional[float] = field(default=None, metadata={"help": "Shorthand for --select_by size --limit N."})
    baseline_dirs: Optional[list[str]] = field(
        default=None, metadata={"help": "compress.py outputs whose dense model is released as a baseline."})
    translation_dirs: Optional[list[str]] = field(
        default=None, metadata={"help": "run_translation.py outputs, each released as its trained (dense) model."})
    hub_organization: Optional[str] = field(default=None, metadata={"help": "Namespace of the repos (default: yours)."})
    repo_prefix: str = field(default="tbc-", metadata={"help": "Prefix of every repo name."})
    private: bool = field(default=False, metadata={"help": "Create private repos."})
    overwrite: bool = field(default=False, metadata={"help": "Replace the content of existing repos that differ."})
    dry_run: bool = field(default=False, metadata={"help": "Write the repo folders; push nothing."})
    license: str = field(default="apache-2.0", metadata={"help": "License in the cards' metadata."})
    card_dataset: Optional[str] = field(
        default=None, metadata={"help": "Hub dataset id of the evaluation data for the cards (GLUE runs: nyu-mll/glue)."})
    card_dataset_config: Optional[str] = field(default=None, metadata={"help": "Its config, e.g. sst2."})
    card_dataset_split: Optional[str] = field(
        default=None, metadata={"help": "Its split (default: validation for classifiers, the split BLEU was scored on for "
                                "translation runs)."})
    card_pretraining_datasets: Optional[list[str]] = field(
        default=None, metadata={"help": "Hub dataset ids of a local pretraining corpus, for the cards' `datasets` "
                                "(a Hub corpus given with --dataset_name is named without this)."})

    def __post_init__(self):
        self.select_by, self.limit = resolve_selection(self.select_by, self.limit, self.max_size_mb)

    def card_dataset_for(self, variant: "Variant") -> tuple[str, Optional[str], str]:
        """(dataset id, config, split) for the card: the GLUE task the model was finetuned on, else the flags."""
        task = variant.finetuning.get("task_name")
        if self.card_dataset is None and task:
            split = "validation_matched" if task == "mnli" else "validation"
            return "nyu-mll/glue", task, split
        if self.card_dataset is None:
            raise UsageError(f"{variant.row['variant']} was finetuned on local files: name their Hub dataset for the "
                             "card with --card_dataset (and --card_dataset_config, --card_dataset_split)")
        return self.card_dataset, self.card_dataset_config, self.card_dataset_split or "validation"

    def card_dataset_for_translation(self, run) -> tuple[str, Optional[str], str]:
        """(dataset id, config, split) of a translation run's card: its Hub dataset, else the flags."""
        split = "test" if "test" in run.results["splits"] else "validation"
        if self.card_dataset is None and run.summary.get("dataset_name"):
            return run.summary["dataset_name"], run.summary.get("dataset_config_name"), self.card_dataset_split or split
        if self.card_dataset is None:
            raise UsageError(f"{run.folder} was trained on local files: name their dataset for the card with "
                             "--card_dataset (and --card_dataset_config, --card_dataset_split)")
        return self.card_dataset, self.card_dataset_config, self.card_dataset_split or split


@dataclass
class Variant:
    """One variant to release, with the records that describe it."""

    folder: Path
    row: dict  # its compression.jsonl row
    finetuning: dict  # eval_results.json of the finetuned model it was compressed from
    pretraining: Optional[dict]  # run_summary.json of the pretrained model, when hf-tbc made it
    repo_id: str = ""
    parent_repo_id: Optional[str] = None

    @property
    def kind(self) -> str:
        return variant_kind(self.folder)

    @property
    def size_name(self) -> str:
        if self.pretraining and self.pretraining.get("model_size"):
            return Path(str(self.pretraining["model_size"])).name
        return Path(self.finetuning["model_name_or_path"]).name

    def default_repo_name(self, prefix: str = "") -> str:
        task = self.finetuning.get("task_name") or self.finetuning.get("task")
        return f"{prefix}{self.size_name}-{task}-{self.row['variant']}"


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise UsageError(f"missing record {path} ({what}): run the step that writes it first")
    return json.loads(path.read_text())


def load_variant_records(folder: Union[str, Path]) -> Variant:
    """The variant in ``folder`` (a subfolder of a compress.py output) and its records up the chain."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise UsageError(f"variant folder {folder} does not exist: pass a folder written by recipes/compress.py")
    records = folder.parent / "compression.jsonl"
    if not records.is_file():
        raise UsageError(f"missing record {records}: {folder} is not inside a recipes/compress.py output")
    rows = [row for row in read_records(records) if row["variant"] == folder.name]
    if not rows:
        raise UsageError(f"missing record: {records} has no row for variant {folder.name}")
    row = rows[0]
    finetuned = Path(row.get("base_model", ""))
    finetuning = _read_json(finetuned / "eval_results.json", "finetuning results")
    pretrained = Path(str(finetuning.get("model_name_or_path", "")))
    pretraining = json.loads((pretrained / "run_summary.json").read_text()) if (pretrained / "run_summary.json").is_file() else None
    return Variant(folder, row, finetuning, pretraining)


def check_select_by(select_by: str) -> str:
    if select_by not in SELECT_BY:
        raise UsageError(f"--select_by {select_by!r} is unknown: choose {', '.join(SELECT_BY)}")
    return select_by


def resolve_selection(select_by: str = "latency", limit: Optional[float] = None,
                      max_size_mb: Optional[float] = None) -> tuple[str, Optional[float]]:
    """(select_by, limit) from the release flags (or a study's release section): ``max_size_mb`` is short for size."""
    check_select_by(select_by)
    if max_size_mb is None:
        return select_by, float(limit) if limit is not None else None
    if limit is not None:
        raise UsageError("pass either --max_size_mb or --select_by/--limit, not both")
    return "size", float(max_size_mb)


def cost(row: dict, select_by: str) -> float:
    """What a variant costs in the unit of ``select_by``: ms of latency, MB on disk or nonzero parameters."""
    key, scale, _ = SELECT_BY[check_select_by(select_by)]
    return row[key] / scale


def format_cost(value: float, select_by: str) -> str:
    unit = SELECT_BY[select_by][2]
    return f"{value:,.0f} {unit}" if select_by == "nonzero_parameters" else f"{value:.2f} {unit}"


def best_under(rows: list[dict], select_by: str = "size", limit: Optional[float] = None) -> Optional[dict]:
    """The most accurate row whose cost is at most ``limit`` (the cheaper one on a tie); None if none fits."""
    fitting = [row for row in rows if limit is None or cost(row, select_by) <= limit]
    return max(fitting, key=lambda row: (row["accuracy"], -cost(row, select_by))) if fitting else None


def select_variants(compression_dirs: list[Union[str, Path]], select_by: str = "size",
                    limit: Optional[float] = None) -> list[Path]:
    """The most accurate variant of each compression output that costs at most ``limit`` by ``select_by``
    (``latency`` in ms, ``size`` in MB, ``nonzero_parameters``); a base model with none under the limit is
    skipped with a warning that names it."""
    chosen = []
    for directory in compression_dirs:
        rows = read_records(directory)
        best = best_under(rows, select_by, limit)
        if best is None:
            cheapest = min(cost(row, select_by) for row in rows)
            logger.warning(f"skipped {directory}: no variant costs at most {format_cost(limit, select_by)} by "
                           f"{select_by} (its cheapest: {format_cost(cheapest, select_by)})")
            continue
        chosen.append(Path(directory) / best["variant"])
    return chosen


def dense_parent(variant: Variant) -> Optional[Path]:
    """The uncompressed ``dense-fp32`` folder beside a compressed variant (None for the dense one itself)."""
    if variant.row["variant"] == "dense-fp32":
        return None
    return variant.folder.parent / "dense-fp32"


# -- cards ---------------------------------------------------------------------------------------------
def card_data(variant: Variant, dataset_id: str, dataset_config: Optional[str], dataset_split: str, license: str,
              corpus_ids: tuple[str, ...] = ()) -> ModelCardData:
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
        tags=["train-large-then-compress", "hf-tbc", "roberta", *METHOD_TAGS[variant.row["method"]],
              *PRUNING_TAGS.get(pruning_of(variant.row), []),
              *(["sparse"] if stored_sparse(variant.row) else [])],
        datasets=list(dict.fromkeys([*corpus_ids, dataset_id])),  # what it was trained on, then evaluated on
        base_model=variant.parent_repo_id,
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


def corpus_description(record: dict) -> str:
    """Every file of a local corpus (not only the last), a Hub dataset with its config, or the built-in corpus."""
    files = record.get("corpus_files") or [part for part in str(record["corpus"]).split(",") if part.strip()]
    if record.get("dataset_name"):
        config = record.get("dataset_config_name")
        return f"{record['dataset_name']}" + (f" ({config})" if config else "")
    if len(files) > 1 or str(record["corpus"]).startswith(("/", ".", "~")):
        return ", ".join(_public_name(path.strip()) for path in files)
    return str(record["corpus"])


def _loading_snippet(variant: Variant) -> str:
    example = "A gripping, beautifully acted film."
    if variant.kind == "onnx":
        load = ("from hf_tbc import OnnxModelForSequenceClassification  # pip install hf-tbc\n"
                "from transformers import AutoTokenizer\n\n"
                "# or, with optimum-onnx installed: from optimum.onnxruntime import ORTModelForSequenceClassification\n"
                f'model = OnnxModelForSequenceClassification.from_pretrained("{variant.repo_id}")')
    elif variant.kind == "quanto":
        load = ("import torch  # pip install hf-tbc\nfrom hf_tbc.compress import QuantizedModelForSequenceClassification\n"
                "from transformers import AutoTokenizer\n\n"
                f'model = QuantizedModelForSequenceClassification.from_pretrained("{variant.repo_id}")')
    else:
        load = ("from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
                f'model = AutoModelForSequenceClassification.from_pretrained("{variant.repo_id}")')
    run = "with torch.no_grad():  # quanto rejects torch.inference_mode()\n    logits = model(**inputs).logits" \
        if variant.kind == "quanto" else "logits = model(**inputs).logits"
    return (f'{load}\ntokenizer = AutoTokenizer.from_pretrained("{variant.repo_id}")\n'
            f'inputs = tokenizer("{example}", return_tensors="pt")\n{run}\n'
            "print(model.config.id2label[int(logits.argmax(-1))])")


def _compression_text(variant: Variant) -> str:
    row = variant.row
    parts = []
    gradual = " gradually during finetuning (cubic schedule)" if row.get("schedule") == "gradual" else ""
    if pruning_of(row) == "unstructured":
        parts.append(f"Magnitude pruning ({row.get('pruning_scope') or 'layer'} scope){gradual} of the encoder's "
                     f"attention and feed-forward weights to {100 * row['sparsity']:.1f} % zeros, measured on the "
                     "released weights.")
    elif pruning_of(row) == "structured":
        parts.append(f"Structured pruning ({row.get('importance', 'magnitude')} importance){gradual}: "
                     f"{len(row.get('removed_layers') or [])} of {row.get('parent_layers', '?')} encoder layers and "
                     f"{row.get('parent_intermediate_size', 0) - row.get('intermediate_size', 0)} of "
                     f"{row.get('parent_intermediate_size', '?')} feed-forward neurons per layer removed, "
                     f"{100 * row['sparsity']:.1f} % of the encoder's linear weights: a smaller dense model of "
                     f"{row.get('num_hidden_layers')} layers with intermediate size {row.get('intermediate_size')}, "
                     "loaded by the stock classes.")
    if pruning_of(row) and row.get("recovery"):
        parts.append("Then finetuned again on the task with the pruned structure fixed (recovery).")
    if row["method"] == "onnx-int8":
        parts.append(f"Exported to ONNX and quantized with ONNX Runtime dynamic int8 (weights int8, activations "
                     f"quantized at run time; configuration for {row.get('instruction_set', 'this CPU')}).")
    elif row["method"].startswith("quanto"):
        parts.append(f"Weight-only quantization of the linear layers to int{row['bits']} with optimum-quanto; "
                     "activations stay in floating point.")
    return " ".join(parts) or "No compression: this is the dense model (the baseline its compressed variants are compared with)."


def _limitations(variant: Variant) -> str:
    notes = [f"Finetuned and evaluated on {_public_name(variant.finetuning.get('dataset'))}: accuracy elsewhere is unmeasured.",
             "A small research model trained under a short compute budget; not for decisions about people."]
    if stored_sparse(variant.row):
        notes.append("Unstructured zeros are stored densely: they shrink neither the file nor the latency on dense kernels.")
    elif pruning_of(variant.row) == "unstructured":
        notes.append(f"Pruned to {100 * variant.row['target_sparsity']:.0f} % zeros, but the quantized weights as stored "
                     f"are only {100 * variant.row['sparsity']:.1f} % zeros: the quantization did not keep the pruned "
                     "weights at exactly zero.")
    if variant.kind == "quanto":
        notes.append("quanto saves memory, not time, on CPUs, and needs the hf-tbc package to load.")
    return "\n".join(f"- {note}" for note in notes)


def render_card(variant: Variant, dataset_id: str, dataset_config: Optional[str], dataset_split: str,
                license: str = "apache-2.0", template: Union[str, Path] = DEFAULT_TEMPLATE,
                pretraining_corpus_ids: Optional[list[str]] = None) -> ModelCard:
    """The model card, rendered from ``template`` with figures from the variant's records only."""
    row, finetuning, pretraining = variant.row, variant.finetuning, variant.pretraining
    config = json.loads((variant.folder / "config.json").read_text())
    values = {
        "model_name": variant.repo_id.split("/")[-1],
        "summary": (f"A RoBERTa text classifier ({variant.size_name}) for {finetuning.get('task')}, variant "
                    f"`{row['variant']}`: {100 * row['accuracy']:.2f} % accuracy in {row['size_bytes'] / 1e6:.2f} MB of weights."),
        "architecture": (config.get("architectures") or ["RobertaForSequenceClassification"])[0],
        "size_name": variant.size_name,
        "num_layers": config.get("num_hidden_layers"),
        "hidden_size": config.get("hidden_size"),
        "num_heads": config.get("num_attention_heads"),
        "parameters": row["parameters"],
        "nonzero_parameters": row["nonzero_parameters"],
        "variant": row["variant"],
        "parent_repo": variant.parent_repo_id,
        "pretrained_from": finetuning.get("model_name_or_path"),
        "pretraining": None if pretraining is None else {
            "budget": format_duration(pretraining["time_budget_s"]) if pretraining.get("time_budget_s") else "none (step-limited)",
            "corpus": corpus_description(pretraining),
            "hardware": _hardware(pretraining["hardware"]),
            "train_time": format_duration(pretraining["train_s"]),
            "total_time": format_duration(pretraining["total_s"]),
            "steps": pretraining["steps"],
            "tokens": pretraining["tokens"],
            "final_eval_loss": pretraining["final_eval_loss"],
            "stop_reason": pretraining["stop_reason"],
        },
        "finetuning": {
            "task": finetuning.get("task"),
            "data": _public_name(finetuning.get("dataset")),
            "train_examples": finetuning["train_examples"],
            "steps": finetuning["steps"],
            "train_time": format_duration(finetuning["train_s"]),
            "budget": format_duration(finetuning["time_budget_s"]) if finetuning.get("time_budget_s") else None,
        },
        "compression_text": _compression_text(variant),
        "eval_dataset": f"{dataset_id} {dataset_config}" if dataset_config else dataset_id,
        "eval_split": dataset_split,
        "accuracy": row["accuracy"],
        "sparsity": row["sparsity"],
        "size_bytes": row["size_bytes"],
        "latency_ms": row["latency_ms"],
        "latency_batch": row["latency_batch"],
        "latency_threads": row["latency_threads"],
        "latency_hardware": row.get("hardware", "unrecorded CPU"),
        "loading_snippet": _loading_snippet(variant),
        "limitations": _limitations(variant),
    }
    empty = [key for key, value in values.items() if value in ("", None, []) and key not in ("parent_repo", "pretraining")]
    if empty:
        raise UsageError(f"the card for {row['variant']} would have empty fields ({', '.join(empty)}): complete the records")
    data = card_data(variant, dataset_id, dataset_config, dataset_split, license,
                     tuple(pretraining_datasets(variant, pretraining_corpus_ids)))
    return ModelCard.from_template(data, template_path=str(template), **values)


def _public_name(source) -> Optional[str]:
    """A dataset id as is; a local path reduced to its last two parts (no home folders in public cards)."""
    if source is None or not str(source).startswith(("/", ".", "~")):
        return source
    parts = Path(str(source)).parts
    return "/".join(parts[-2:]) + " (local file)"


def _hardware(hardware: dict) -> str:
    accelerator = hardware.get("accelerator")
    return f"{accelerator}" if accelerator else f"{hardware.get('cpu')} ({hardware.get('cpu_count')} cores, CPU only)"


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if the Hub accepts it (``huggingface_hub``'s own rules); ``UsageError`` naming the fix otherwise."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UsageError(f"invalid repo id {repo_id!r}: {str(error).splitlines()[0]} Change --hub_organization or "
                         "--repo_prefix") from None
    return repo_id


def assemble(variant, card: ModelCard, output_dir: Union[str, Path]) -> Path:
    """``output_dir``: the files of ``variant.folder`` (weights, config, tokenizer, records; no training checkpoints)
    and ``README.md``, ready to push."""
    output_dir = Path(output_dir)
    staging = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(variant.folder, staging, ignore=shutil.ignore_patterns("checkpoint-*", "training_args.bin"))
    card.save(staging / "README.md")
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)
    return output_dir
