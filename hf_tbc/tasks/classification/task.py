"""Sequence classification (MNLI-style pairs or single sentences) as a task: finetuning a pretrained encoder, the
compression grid of a classifier, and the release of its variants with accuracy cards."""

from __future__ import annotations

from pathlib import Path

from ...release.plan import ReleaseArguments, ReleaseItem, check_repo_id
from ..task import Task
from .arguments import ClassificationDataArguments, ClassificationModelArguments, FinetuningArguments
from .model import is_classifier


def _train(model_args, data_args, training_args) -> dict:
    from .train import finetune

    return finetune(model_args, data_args, training_args)


def _compress(compression_args, data_args) -> list[dict]:
    from .compress import classification_grid

    return classification_grid(compression_args, data_args)


def _release_items(args: ReleaseArguments, folders: list[Path], namespace: str) -> list[ReleaseItem]:
    """The repos of the classifier variants in ``folders``, each compressed one with its dense parent (which its card
    names as ``base_model``): repo ids checked by the Hub's rules, cards and public records."""
    from .card import render_card
    from .release import card_dataset, dense_parent, load_variant_records, public_record, public_task

    variants: dict = {}  # folder: Variant, each once
    for folder in folders:
        variant = load_variant_records(folder)
        parent = dense_parent(variant)
        for item in ([load_variant_records(parent)] if parent else []) + [variant]:
            variants.setdefault(item.folder, item)
    tasks = {folder: public_task(args, variant) for folder, variant in variants.items()}
    for folder, variant in variants.items():
        variant.repo_id = check_repo_id(f"{namespace}/{variant.default_repo_name(args.repo_prefix, tasks[folder])}")
    by_folder = {variant.folder: variant.repo_id for variant in variants.values()}
    for variant in variants.values():
        parent = dense_parent(variant)
        variant.parent_repo_id = by_folder.get(parent.resolve()) if parent else None
    items = []
    for folder, variant in variants.items():
        dataset = card_dataset(args, variant)
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
    return items


TASK = Task(
    name="classification",
    recipe="run_classification.py",
    arguments=(ClassificationModelArguments, ClassificationDataArguments, FinetuningArguments),
    train=_train,
    compresses=is_classifier,
    compression_arguments=ClassificationDataArguments,
    compress=_compress,
    release_items=_release_items,
)
