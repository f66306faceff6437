"""Release: which variants and runs to publish, their public names and records, and their Hub-ready folders.

Every figure in a card (``hf_tbc.tasks.classification.card``) and a public record comes from a record another recipe
wrote
(``run_summary.json`` of pretraining, ``eval_results.json`` of finetuning, the variant's row in
``compression.jsonl``), never from a typed number. A release is planned whole (:func:`plan_release`: names, cards,
records), staged and scanned for local strings (:func:`stage_release`), then checked against the Hub and pushed
(``hf_tbc.hub``), so that bad input, a leak or a conflict stops it before its first write.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from huggingface_hub import ModelCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.utils import logging

from .errors import UsageError
from .public import RECORD_FILE, LocalStrings, copy_model_files, public_names, scan
from .selection import SELECT_BY, resolve_selection, select_variants
from .tasks.classification.card import render_card
from .tasks.classification.release import Variant, load_variant_records, public_record
from .tasks.translation.card import render_translation_card
from .tasks.translation.release import (
    is_translation_variant,
    load_translation_run,
    load_translation_variant_records,
    public_translation_record,
    public_translation_variant_record,
)

logger = logging.get_logger(__name__)


@dataclass
class ReleaseArguments:
    """What to release and where; ``HfArgumentParser`` turns each field into a flag."""

    output_dir: str = field(metadata={"help": "Where the repo folders (weights, tokenizer, README.md) are written."})
    variants: Optional[list[str]] = field(default=None, metadata={"help": "Variant folders written by compress.py."})
    compression_dirs: Optional[list[str]] = field(
        default=None, metadata={"help": "compress.py outputs: the most accurate variant of each under --limit."}
    )
    select_by: str = field(
        default="latency",
        metadata={
            "help": "What --limit bounds when choosing from --compression_dirs: latency (ms per measured batch), size "
            "(MB of weight files) or nonzero_parameters.",
            "choices": list(SELECT_BY),
        },
    )
    limit: Optional[float] = field(
        default=None,
        metadata={
            "help": "Most a chosen variant may cost by --select_by; a base model with no variant under it is skipped."
        },
    )
    max_size_mb: Optional[float] = field(default=None, metadata={"help": "Shorthand for --select_by size --limit N."})
    baseline_dirs: Optional[list[str]] = field(
        default=None, metadata={"help": "compress.py outputs whose dense model is released as a baseline."}
    )
    translation_dirs: Optional[list[str]] = field(
        default=None, metadata={"help": "run_translation.py outputs, each released as its trained (dense) model."}
    )
    hub_organization: Optional[str] = field(default=None, metadata={"help": "Namespace of the repos (default: yours)."})
    repo_prefix: str = field(default="tbc-", metadata={"help": "Prefix of every repo name."})
    private: bool = field(default=False, metadata={"help": "Create private repos."})
    overwrite: bool = field(default=False, metadata={"help": "Replace the content of existing repos that differ."})
    dry_run: bool = field(default=False, metadata={"help": "Write the repo folders; push nothing."})
    license: str = field(default="apache-2.0", metadata={"help": "License in the cards' metadata."})
    card_dataset: Optional[str] = field(
        default=None,
        metadata={"help": "Hub dataset id of the evaluation data for the cards (GLUE runs: nyu-mll/glue)."},
    )
    card_dataset_config: Optional[str] = field(default=None, metadata={"help": "Its config, e.g. sst2."})
    card_dataset_split: Optional[str] = field(
        default=None,
        metadata={
            "help": "Its split (default: validation for classifiers, the split BLEU was scored on for "
            "translation runs)."
        },
    )
    card_pretraining_datasets: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Hub dataset ids of a local pretraining corpus, for the cards' `datasets` "
            "(a Hub corpus given with --dataset_name is named without this)."
        },
    )
    task_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "The task's name in repo ids and cards, e.g. sst2. Default: the GLUE task a "
            "classifier was finetuned on, else --card_dataset_config, else the last part of "
            "--card_dataset; never a local folder's name."
        },
    )

    def __post_init__(self):
        self.select_by, self.limit = resolve_selection(self.select_by, self.limit, self.max_size_mb)

    def public_task(self, variant: Variant) -> str:
        """The task's public name: ``--task_name``, the GLUE task, or the card's Hub dataset (config, else its name)."""
        name = self.task_name or variant.finetuning.get("task_name")
        if not name and self.card_dataset:
            config = self.card_dataset_config
            name = config if config and config != "default" else self.card_dataset.rstrip("/").split("/")[-1]
        if not name:
            raise UsageError(
                f"{variant.row['variant']} was finetuned on local files, whose folder name stays private: "
                "name their Hub dataset for the card with --card_dataset (and --card_dataset_config), or "
                "the task with --task_name"
            )
        return name

    def card_dataset_for(self, variant: Variant) -> tuple[str, Optional[str], str]:
        """(dataset id, config, split) for the card: the GLUE task the model was finetuned on, else the flags."""
        task = variant.finetuning.get("task_name")
        if self.card_dataset is None and task:
            split = "validation_matched" if task == "mnli" else "validation"
            return "nyu-mll/glue", task, split
        if self.card_dataset is None:
            raise UsageError(
                f"{variant.row['variant']} was finetuned on local files: name their Hub dataset for the "
                "card with --card_dataset (and --card_dataset_config, --card_dataset_split)"
            )
        return self.card_dataset, self.card_dataset_config, self.card_dataset_split or "validation"

    def card_dataset_for_translation(self, run) -> tuple[str, Optional[str], str]:
        """(dataset id, config, split) of a translation run's card: its Hub dataset, else the flags."""
        split = "test" if "test" in run.results["splits"] else "validation"
        if self.card_dataset is None and run.summary.get("dataset_name"):
            return run.summary["dataset_name"], run.summary.get("dataset_config_name"), self.card_dataset_split or split
        if self.card_dataset is None:
            raise UsageError(
                f"{run.folder} was trained on local files: name their dataset for the card with "
                "--card_dataset (and --card_dataset_config, --card_dataset_split)"
            )
        return self.card_dataset, self.card_dataset_config, self.card_dataset_split or split


def dense_parent(variant: Variant) -> Optional[Path]:
    """The uncompressed ``dense-fp32`` folder beside a compressed variant (None for the dense one itself)."""
    if variant.row["variant"] == "dense-fp32":
        return None
    return variant.folder.parent / "dense-fp32"


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if the Hub accepts it (``huggingface_hub``'s own rules); ``UsageError`` naming the fix otherwise."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UsageError(
            f"invalid repo id {repo_id!r}: {str(error).splitlines()[0]} Change --hub_organization or --repo_prefix"
        ) from None
    return repo_id


def local_strings(
    records: list[tuple[Path, list[dict]]], output_dir: Union[str, Path], public: set[str]
) -> LocalStrings:
    """What no file of this release may hold: the folders it reads (``records``: each item's folder and records,
    whose every path is followed), the folder it writes, the home folder and the host name."""
    local = LocalStrings(public=public)
    local.add_machine()
    local.add_folder(output_dir, "--output_dir")
    for folder, item_records in records:
        local.add_folder(folder, "a released folder")
        local.add_folder(Path(folder).parent, "the folder holding a released folder")
        for record in item_records:
            local.add_record(record, "a record")
    return local


def assemble(source: Union[str, Path], card: ModelCard, record: dict, output_dir: Union[str, Path]) -> Path:
    """``output_dir``: the model files of ``source`` (weights, config, generation config, tokenizer), ``README.md``
    and the public record, ready to push; nothing else of the source folder (records, curves, translations,
    checkpoints) goes along."""
    output_dir = Path(output_dir)
    staging = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    copy_model_files(source, staging)
    card.save(staging / "README.md")
    (staging / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)
    return output_dir


@dataclass
class ReleaseItem:
    """One repo of a release: the folder its model files come from, its card, its public record, the local records
    it was built from (for the scan) and what release.json and the commit say of it."""

    repo_id: str
    source: Path
    card: ModelCard
    record: dict
    local_records: list[dict]
    figures: dict
    message: str

    @property
    def name(self) -> str:
        return self.repo_id.split("/")[-1]


def _translation_variant_item(args: ReleaseArguments, variant) -> ReleaseItem:
    """The repo of a compressed translation variant: its card and public record from its row and its run."""
    dataset = args.card_dataset_for_translation(variant.run)
    row = variant.row
    summary = variant.run.summary
    return ReleaseItem(
        variant.repo_id,
        variant.folder,
        render_translation_card(variant.run, *dataset, license=args.license, variant=variant),
        public_translation_variant_record(variant, *dataset),
        [row, summary, variant.run.results],
        {"variant": row["variant"], "bleu": row["bleu"], "chrf": row["chrf"], "size_bytes": row["size_bytes"]},
        f"Release {variant.size_name} {row['variant']} ({summary['source_lang']}-{summary['target_lang']}, BLEU "
        f"{row['bleu']:.1f}, {row['latency_ms']:.0f} ms/sentence)",
    )


def plan_release(args: ReleaseArguments, namespace: str) -> list[ReleaseItem]:
    """Every repo the flags ask for, with its repo id (checked by the Hub's rules), card and public record: all that
    can fail on bad input fails here, before anything is written."""
    folders = [Path(folder) for folder in args.variants or []]
    if args.compression_dirs:
        folders += select_variants(args.compression_dirs, args.select_by, args.limit)
    folders += [Path(directory) / "dense-fp32" for directory in args.baseline_dirs or []]
    runs = [load_translation_run(folder) for folder in args.translation_dirs or []]
    kinds = {folder: is_translation_variant(folder) for folder in folders}  # each grid's record read once
    translated = [load_translation_variant_records(folder) for folder in folders if kinds[folder]]
    folders = [folder for folder in folders if not kinds[folder]]
    if not folders and not runs and not translated:
        raise UsageError(
            "nothing to release: pass --variants, or --compression_dirs (with --select_by and a --limit "
            "some variant meets) and --baseline_dirs, or --translation_dirs"
        )
    variants: dict[Path, Variant] = {}
    for folder in folders:  # every compressed variant brings its dense parent, which its card names as base_model
        variant = load_variant_records(folder)
        parent = dense_parent(variant)
        for item in ([load_variant_records(parent)] if parent else []) + [variant]:
            variants.setdefault(item.folder, item)
    tasks = {folder: args.public_task(variant) for folder, variant in variants.items()}
    for folder, variant in variants.items():
        variant.repo_id = check_repo_id(f"{namespace}/{variant.default_repo_name(args.repo_prefix, tasks[folder])}")
    by_folder = {variant.folder: variant.repo_id for variant in variants.values()}
    for variant in variants.values():
        parent = dense_parent(variant)
        variant.parent_repo_id = by_folder.get(parent.resolve()) if parent else None
    for run in runs:
        run.repo_id = check_repo_id(f"{namespace}/{run.default_repo_name(args.repo_prefix)}")
    for variant in translated:
        variant.repo_id = check_repo_id(f"{namespace}/{variant.default_repo_name(args.repo_prefix)}")
    items = []
    for folder, variant in variants.items():
        dataset = args.card_dataset_for(variant)
        corpus = args.card_pretraining_datasets
        items.append(
            ReleaseItem(
                variant.repo_id,
                variant.folder,
                render_card(variant, *dataset, license=args.license, pretraining_corpus_ids=corpus, task=tasks[folder]),
                public_record(variant, *dataset, task=tasks[folder], corpus_ids=corpus),
                [variant.row, variant.finetuning, variant.pretraining or {}],
                {
                    "variant": variant.row["variant"],
                    "accuracy": variant.row["accuracy"],
                    "size_bytes": variant.row["size_bytes"],
                },
                f"Release {variant.row['variant']} ({variant.size_name}, accuracy {variant.row['accuracy']:.4f})",
            )
        )
    for run in runs:
        dataset = args.card_dataset_for_translation(run)
        scores = run.results["splits"][run.results["bleu_split"]]
        items.append(
            ReleaseItem(
                run.repo_id,
                run.folder,
                render_translation_card(run, *dataset, license=args.license),
                public_translation_record(run, *dataset),
                [run.summary, run.results],
                {
                    "variant": "dense",
                    "bleu": scores["bleu"],
                    "chrf": scores["chrf"],
                    "size_bytes": (run.folder / "model.safetensors").stat().st_size,
                },
                f"Release {run.size_name} ({run.summary['source_lang']}-{run.summary['target_lang']}, BLEU "
                f"{scores['bleu']:.1f})",
            )
        )
    items += [_translation_variant_item(args, variant) for variant in translated]
    return items


def stage_release(items: list[ReleaseItem], output_dir: Union[str, Path]) -> tuple[Path, dict[str, Path]]:
    """Assembles every repo folder in a new staging folder beside ``output_dir`` and scans them all for local
    strings; on any error the staging folder is removed and ``output_dir`` is untouched. Returns the staging
    folder and ``{repo_id: staged folder}``."""
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        repos = {item.repo_id: assemble(item.source, item.card, item.record, staging / item.name) for item in items}
        public = public_names(
            *(
                [
                    item.repo_id.split("/")[0],
                    item.figures["variant"],
                    item.record.get("size"),
                    *item.record["evaluation"].values(),
                ]
                for item in items
            ),
            *(item.name.split("-") for item in items),
        )
        scan(repos, local_strings([(item.source, item.local_records) for item in items], output_dir, public))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, repos


def move_staged(staging: Path, repos: dict[str, Path], output_dir: Union[str, Path]) -> dict[str, Path]:
    """Puts each staged repo folder at ``output_dir/<repo name>`` (replacing an older one); removes ``staging``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    moved = {}
    for repo_id, folder in repos.items():
        target = output_dir / folder.name
        shutil.rmtree(target, ignore_errors=True)
        folder.rename(target)
        moved[repo_id] = target
    shutil.rmtree(staging, ignore_errors=True)
    return moved


def describe_files(folder: Path) -> list[dict]:
    """Every file a repo folder would push, with its size: what a dry run shows."""
    return [
        {"path": path.relative_to(folder).as_posix(), "bytes": path.stat().st_size}
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
