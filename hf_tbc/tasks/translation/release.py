"""What a release takes from a translation run: the run and its records, its public size name, and the public
record published next to its card."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ...errors import UsageError
from ...release.leaks import public_sources
from ...release.plan import ReleaseArguments

SIZE_NAME = re.compile(r"E\d+-D\d+-H\d+")


@dataclass
class TranslationRun:
    """One run_translation.py output to release, with its records."""

    folder: Path
    summary: dict  # run_summary.json
    results: dict  # eval_results.json
    repo_id: str = ""

    @property
    def size_name(self) -> str:
        """The size preset it was trained at (``E3-D3-H256``), else its shape; never a folder's name."""
        recorded = str(self.summary.get("model_size") or "")
        if SIZE_NAME.fullmatch(recorded):
            return recorded
        config = self.summary["config"]
        return f"E{config['encoder_layers']}-D{config['decoder_layers']}-H{config['d_model']}"

    def default_repo_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.size_name}-{self.summary['source_lang']}-{self.summary['target_lang']}"


def load_run(folder: Union[str, Path]) -> TranslationRun:
    """The finished run in ``folder``; a one-line error naming what is missing otherwise."""
    folder = Path(folder).resolve()
    records = {}
    for name in ("run_summary.json", "eval_results.json"):
        path = folder / name
        if not path.is_file():
            raise UsageError(
                f"missing record {path}: pass a folder written by recipes/run_translation.py that finished"
            )
        records[name] = json.loads(path.read_text())
    if records["run_summary.json"].get("task") != "translation" or not records["eval_results.json"].get("model_saved"):
        raise UsageError(f"{folder} holds no finished translation run (a preempted or other run): finish it first")
    return TranslationRun(folder, records["run_summary.json"], records["eval_results.json"])


SUMMARY_RECORD = tuple(
    "task model_size parameters config source_lang target_lang dataset_name dataset_config_name train_pairs "
    "time_budget_s budget_includes_eval stop_reason deadline_overshoot_s train_s total_s eval_s "
    "eval_share_of_budget steps tokens curve_eval_pairs final_eval_loss final_eval_bleu final_eval_chrf "
    "final_eval_distinct copy_source_bleu world_size precision per_device_train_batch_size learning_rate "
    "warmup_ratio label_smoothing_factor schedule hardware".split()
)


def public_record(run: TranslationRun, dataset_id: str, dataset_config: Optional[str], dataset_split: str) -> dict:
    """The record published next to the card: the run's figures, its data as a Hub id or file names, and its
    scores without the sample translations (they quote the evaluation data)."""
    summary = {key: run.summary[key] for key in SUMMARY_RECORD if key in run.summary}
    summary.update(
        model_size=run.size_name, data=public_sources(run.summary.get("dataset_name") or run.summary.get("dataset"))
    )
    splits = {
        name: {key: value for key, value in scores.items() if key != "samples"}
        for name, scores in run.results["splits"].items()
    }
    return {
        "repo_id": run.repo_id,
        "size": run.size_name,
        "evaluation": {
            "dataset": dataset_id,
            "config": dataset_config,
            "split": dataset_split,
            "decoding": run.results.get("decoding"),
            "splits": splits,
            "copy_source": run.results.get("copy_source"),
        },
        "training": summary,
    }


@dataclass
class TranslationVariant:
    """One variant of a translation compression grid (a ``recipes/compress.py`` output of a translation model), its
    row of ``compression.jsonl`` and the run it was made from."""

    folder: Path
    row: dict
    run: TranslationRun
    repo_id: str = ""
    parent_repo_id: Optional[str] = None  # the dense run's repo, where it is released with this variant

    @property
    def size_name(self) -> str:
        return self.run.size_name

    def default_repo_name(self, prefix: str = "") -> str:
        return f"{self.run.default_repo_name(prefix)}-{self.row['variant']}"


def load_variant_records(folder: Union[str, Path]) -> TranslationVariant:
    """The variant in ``folder`` and the translation run its grid compressed; a one-line error naming what is
    missing otherwise."""
    from ...compress.records import read_records

    folder = Path(folder).resolve()
    rows = [row for row in read_records(folder.parent) if row["variant"] == folder.name]
    if not folder.is_dir() or not rows:
        raise UsageError(f"{folder} is no variant of {folder.parent / 'compression.jsonl'}: pass a variant folder")
    return TranslationVariant(folder, rows[0], load_run(rows[0]["base_model"]))


VARIANT_RECORD = tuple(
    "variant method bits backend target_sparsity sparsity pruning_method pruned shape parent_shape kept_layers "
    "recovery recovery_budget recovery_s recovery_steps_run distilled distill_alpha distill_temperature "
    "loss_before_recovery "
    "validation_loss parent_ffn_dim encoder_ffn_dim decoder_ffn_dim parameters nonzero_parameters size_bytes bleu "
    "chrf looping distinct eval_pairs "
    "decoding latency_ms latency_sentences latency_batch latency_threads instruction_set hardware".split()
)


def public_variant_record(
    variant: TranslationVariant, dataset_id: str, dataset_config: Optional[str], dataset_split: str
) -> dict:
    """The public record of a compressed translation variant: its row (measured on its own files), the evaluation
    data as a Hub id, and the training run it was made from."""
    record = public_record(variant.run, dataset_id, dataset_config, dataset_split)
    record.update(
        repo_id=variant.repo_id,
        base_model=variant.parent_repo_id,
        compression={key: variant.row[key] for key in VARIANT_RECORD if key in variant.row},
    )
    record["evaluation"].update(
        split="validation",
        decoding=variant.row.get("decoding"),
        variant_scores={key: variant.row[key] for key in ("bleu", "chrf", "eval_pairs") if key in variant.row},
    )
    return record


def card_dataset_for_run(args: ReleaseArguments, run: TranslationRun) -> tuple[str, Optional[str], str]:
    """(dataset id, config, split) of a translation run's card: its Hub dataset, else the flags."""
    split = "test" if "test" in run.results["splits"] else "validation"
    if args.card_dataset is None and run.summary.get("dataset_name"):
        return run.summary["dataset_name"], run.summary.get("dataset_config_name"), args.card_dataset_split or split
    if args.card_dataset is None:
        raise UsageError(
            f"{run.folder} was trained on local files: name their dataset for the card with "
            "--card_dataset (and --card_dataset_config, --card_dataset_split)"
        )
    return args.card_dataset, args.card_dataset_config, args.card_dataset_split or split
