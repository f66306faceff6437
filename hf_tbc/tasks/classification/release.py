"""What a release takes from a classifier variant: the variant and the records up its chain (compression,
finetuning, pretraining), its public size name, and the public record published next to its card."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ...budget.runs import read_json
from ...compress.records import read_records
from ...compress.variants import variant_kind
from ...errors import UsageError
from ...release.leaks import is_local_path, public_sources
from ...release.plan import ReleaseArguments

SIZE_NAME = re.compile(r"L\d+-H\d+")


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
        """The size preset it was pretrained at (``L4-H256``), else its dense model's shape; never a folder's name."""
        recorded = str((self.pretraining or {}).get("model_size") or "")
        if SIZE_NAME.fullmatch(recorded):
            return recorded
        config = json.loads((Path(self.row["base_model"]) / "config.json").read_text())
        return f"L{config['num_hidden_layers']}-H{config['hidden_size']}"

    def default_repo_name(self, prefix: str, task: str) -> str:
        return f"{prefix}{self.size_name}-{task}-{self.row['variant']}"


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
    finetuning = read_json(finetuned / "eval_results.json", "finetuning results")
    pretrained = Path(str(finetuning.get("model_name_or_path", "")))
    pretraining = (
        json.loads((pretrained / "run_summary.json").read_text())
        if (pretrained / "run_summary.json").is_file()
        else None
    )
    return Variant(folder, row, finetuning, pretraining)


PRETRAINING_RECORD = tuple(
    "model_size parameters non_embedding_parameters training_flops_per_token config sparse_prediction "
    "position_init dataset_name dataset_config_name block_size mlm_probability eval_mlm_probability time_budget_s "
    "budget_includes_eval stop_reason deadline_overshoot_s train_s total_s steps tokens train_tokens_per_s "
    "achieved_flops_per_s final_eval_loss unigram_loss below_unigram world_size precision "
    "per_device_train_batch_size gradient_accumulation_steps learning_rate warmup_ratio adam_betas max_grad_norm "
    "schedule hardware".split()
)
FINETUNING_RECORD = tuple(
    "random_init task_name labels accuracy majority_accuracy splits train_examples steps train_s time_budget_s "
    "stop_reason deadline_overshoot_s max_seq_length text_pair hardware".split()
)
COMPRESSION_RECORD = tuple(
    "variant method bits backend instruction_set sparsity target_sparsity pruning_method pruning_scope schedule "
    "importance removed_layers layer_share recovery parent_layers parent_intermediate_size num_hidden_layers "
    "intermediate_size shape parent_hidden_size hidden_size num_attention_heads kept_layers recovery_budget "
    "recovery_s recovery_steps_run distilled distill_alpha distill_temperature parameters nonzero_parameters "
    "size_bytes accuracy "
    "max_seq_length latency_ms latency_ms_alone latency_batch latency_threads latency_rounds hardware".split()
)


def public_part(record: Optional[dict], keys: tuple[str, ...]) -> Optional[dict]:
    """The ``keys`` of a local record that a public record may hold (no paths among them)."""
    return None if record is None else {key: record[key] for key in keys if key in record}


def public_record(
    variant: Variant,
    dataset_id: str,
    dataset_config: Optional[str],
    dataset_split: str,
    task: str,
    corpus_ids: Optional[list[str]] = None,
) -> dict:
    """The record published next to the card: the figures of the variant's local records, with every data source a
    Hub id or a file name and nothing else that names this machine."""
    pretraining = public_part(variant.pretraining, PRETRAINING_RECORD)
    if pretraining is not None:
        pretraining["model_size"] = variant.size_name
        pretraining["corpus"] = list(corpus_ids or []) or public_sources(
            variant.pretraining.get("dataset_name")
            or variant.pretraining.get("corpus_files")
            or variant.pretraining.get("corpus")
        )
    finetuning = public_part(variant.finetuning, FINETUNING_RECORD)
    parent = str(variant.finetuning.get("model_name_or_path") or "")
    finetuning.update(
        task=task,
        pretrained_from=None if is_local_path(parent) else parent,
        data=public_sources(variant.finetuning.get("dataset")),
    )
    return {
        "repo_id": variant.repo_id,
        "base_model": variant.parent_repo_id,
        "size": variant.size_name,
        "evaluation": {
            "dataset": dataset_id,
            "config": dataset_config,
            "split": dataset_split,
            "accuracy": variant.row["accuracy"],
        },
        "compression": public_part(variant.row, COMPRESSION_RECORD),
        "finetuning": finetuning,
        "pretraining": pretraining,
    }


def dense_parent(variant: Variant) -> Optional[Path]:
    """The uncompressed ``dense-fp32`` folder beside a compressed variant (None for the dense one itself)."""
    if variant.row["variant"] == "dense-fp32":
        return None
    return variant.folder.parent / "dense-fp32"


def public_task(args: ReleaseArguments, variant: Variant) -> str:
    """The task's public name: ``--task_name``, the GLUE task, or the card's Hub dataset (config, else its name)."""
    name = args.task_name or variant.finetuning.get("task_name")
    if not name and args.card_dataset:
        config = args.card_dataset_config
        name = config if config and config != "default" else args.card_dataset.rstrip("/").split("/")[-1]
    if not name:
        raise UsageError(
            f"{variant.row['variant']} was finetuned on local files, whose folder name stays private: "
            "name their Hub dataset for the card with --card_dataset (and --card_dataset_config), or "
            "the task with --task_name"
        )
    return name


def card_dataset(args: ReleaseArguments, variant: Variant) -> tuple[str, Optional[str], str]:
    """(dataset id, config, split) for the card: the GLUE task the model was finetuned on, else the flags."""
    task = variant.finetuning.get("task_name")
    if args.card_dataset is None and task:
        split = "validation_matched" if task == "mnli" else "validation"
        return "nyu-mll/glue", task, split
    if args.card_dataset is None:
        raise UsageError(
            f"{variant.row['variant']} was finetuned on local files: name their Hub dataset for the "
            "card with --card_dataset (and --card_dataset_config, --card_dataset_split)"
        )
    return args.card_dataset, args.card_dataset_config, args.card_dataset_split or "validation"
