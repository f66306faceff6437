"""Release: the flags, the public repo names, and the Hub-ready folders of a release.

Every figure in a card and a public record comes from a record another recipe wrote (``run_summary.json`` of
pretraining, ``eval_results.json`` of finetuning, the variant's row in ``compression.jsonl``), never from a typed
number. A release is planned whole by its tasks (:func:`hf_tbc.tasks.registry.plan_release`: names, cards, records),
staged and scanned for local strings (:func:`stage_release`), then checked against the Hub and pushed
(``hf_tbc.release.hub``), so that bad input, a leak or a conflict stops it before its first write.
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

from ..errors import UsageError
from .leaks import RECORD_FILE, LocalStrings, copy_model_files, public_names, scan
from .selection import SELECT_BY, resolve_selection

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
    latency_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "A folder whose latency.json timed every variant of --compression_dirs side by side in one process "
            "(python -m hf_tbc.tasks.translation.timing; a translation study's latency stage): with --select_by "
            "latency, variants are chosen by those latencies instead of each grid's own."
        },
    )
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
