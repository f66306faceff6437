"""How one pruned variant of a classifier is made: pruned (unstructured, structured, or to a smaller shape) and
recovered by finetuning on the task, with the dense classifier as teacher unless ``--no_distill``; what the record
says of it. ``compress.py`` runs these for every variant of the grid."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from ...budget.arguments import BudgetTrainingArguments
from ...budget.trainer import BudgetTrainer
from ...compress.arguments import CompressionArguments
from ...compress.distillation import DistillationMixin
from ...compress.importance import taylor_scores
from ...compress.schedule import GradualPruningCallback
from ...compress.shape import measure_importance, parse_shape, prune_to_shape, shape_of
from ...compress.structured import StructuredPruner, structured_prune
from ...compress.unstructured import FixedMaskCallback, UnstructuredPruner, prune_model
from ...compress.variants import prunable_weights
from .train import compute_accuracy


def _batches(train_dataset, tokenizer, count: int, seed: int):
    """``count`` shuffled, padded batches of 32 from the tokenized training data (for Taylor importance)."""
    generator = torch.Generator().manual_seed(seed)
    columns = [
        name for name in train_dataset.column_names if name in ("input_ids", "attention_mask", "labels", "label")
    ]
    loader = DataLoader(
        train_dataset.select_columns(columns),
        batch_size=32,
        shuffle=True,
        generator=generator,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )
    for index, batch in enumerate(loader):
        if index >= count:
            break
        if "label" in batch:
            batch["labels"] = batch.pop("label")
        yield dict(batch)


class DistillingTrainer(DistillationMixin, BudgetTrainer):
    """Recovery on a budget with a teacher: the task loss mixed with the dense classifier's class distribution."""


def _finetune(
    model, train_dataset, tokenizer, args: CompressionArguments, scratch: Path, callbacks=(), teacher=None
) -> tuple[float, int]:
    """Recovery finetuning for ``recovery_steps`` or ``recovery_time_budget``, with ``callbacks`` holding masks and,
    where given, ``teacher``'s logits to learn from; returns the seconds it took and the optimizer steps it ran."""
    training_args = BudgetTrainingArguments(
        output_dir=str(scratch),
        max_steps=args.recovery_steps or -1,
        time_budget=args.recovery_time_budget,
        learning_rate=args.recovery_lr,
        per_device_train_batch_size=32,
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        seed=args.seed,
        schedule_by="steps" if args.recovery_steps else None,
        report_to=[],
        logging_strategy="no",  # one recovery per variant: their loss lines would drown the grid's log
    )
    distill = dict(teacher=teacher, distill_alpha=args.distill_alpha, distill_temperature=args.distill_temperature)
    trainer = (DistillingTrainer if teacher is not None else BudgetTrainer)(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_accuracy,
        **(distill if teacher is not None else {}),
    )
    for callback in callbacks:
        if isinstance(callback, GradualPruningCallback):
            callback.attach(trainer)
        else:
            trainer.add_callback(callback)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, trainer.state.global_step


def _teacher(args: CompressionArguments):
    """The dense classifier, for pruned variants to learn from in recovery (None with ``--no_distill``)."""
    if not args.teacher_used:
        return None
    return AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path)


def build_shape(model, name: str, args: CompressionArguments, train_dataset, tokenizer, scratch: Path):
    """``model`` pruned to the shape ``name`` (``L2-H128``: layers, hidden width, heads and feed-forward neurons
    by their activations on ``--importance_batches`` training batches) and recovered, distilled from ``model``
    unless ``--no_distill``; returns the new model and what was done, for the record."""
    parent = shape_of(model.config)
    batches = _batches(train_dataset, tokenizer, args.importance_batches, args.seed)
    pruned, report = prune_to_shape(model, parse_shape(name, parent), measure_importance(model, batches))
    teacher = model if args.teacher_used else None
    recovered = _finetune(pruned, train_dataset, tokenizer, args, scratch, teacher=teacher) if args.recovers else (0, 0)
    done = {
        "pruning_method": "shape",
        "shape": name,
        # the share of the parameters removed: what a shape variant has instead of a target sparsity
        "target_sparsity": round(1.0 - report.parameters_after / report.parameters_before, 6),
        "schedule": None,
        "recovery": args.recovers,
        "parent_layers": parent.layers["encoder"],
        "parent_hidden_size": parent.hidden,
        "parent_intermediate_size": parent.ffn,
        "kept_layers": report.kept_layers["encoder"],
        "hidden_size": pruned.config.hidden_size,
        "num_attention_heads": pruned.config.num_attention_heads,
        "num_hidden_layers": pruned.config.num_hidden_layers,
        "intermediate_size": pruned.config.intermediate_size,
        **args.recovery_record(*recovered, distilled=teacher is not None),
    }
    return pruned, done


def build_pruned(
    model, pruning: str, sparsity: float, args: CompressionArguments, train_dataset, tokenizer, scratch: Path
) -> dict:
    """Prunes (and, if asked, recovers) ``model`` in place; returns what was done, for the record."""
    done: dict = {
        "pruning_method": pruning if sparsity > 0 else None,
        "target_sparsity": sparsity,
        "schedule": args.pruning_schedule if sparsity > 0 else None,
        "recovery": args.recovers,
        "parent_layers": model.config.num_hidden_layers,
        "parent_intermediate_size": model.config.intermediate_size,
    }
    report, recovered = None, (0.0, 0)
    teacher = _teacher(args) if sparsity > 0 else None  # the dense baseline recovers without one
    if sparsity == 0:
        if args.recovers:  # the dense baseline gets the same extra finetuning as every pruned variant
            recovered = _finetune(model, train_dataset, tokenizer, args, scratch)
    elif args.pruning_schedule == "gradual":
        if pruning == "unstructured":
            pruner = UnstructuredPruner(model, args.pruning_scope, args.prune_embeddings_and_head)
        else:
            pruner = StructuredPruner(model, sparsity, args.importance, args.layer_share)
        callback = GradualPruningCallback(pruner, sparsity, end=args.gradual_end)
        recovered = _finetune(model, train_dataset, tokenizer, args, scratch, [callback], teacher)
        report = callback.report
        done["pruning_steps"] = callback.history
    elif pruning == "unstructured":
        masks, report = prune_model(model, sparsity, args.pruning_scope, args.prune_embeddings_and_head)
        if args.recovers:
            weights = prunable_weights(model, args.prune_embeddings_and_head)
            callbacks = [FixedMaskCallback(weights, masks)]
            recovered = _finetune(model, train_dataset, tokenizer, args, scratch, callbacks, teacher)
    else:
        scores = None
        if args.importance == "taylor":
            scores = taylor_scores(model, _batches(train_dataset, tokenizer, args.importance_batches, args.seed))
        report = structured_prune(model, sparsity, args.importance, layer_share=args.layer_share, scores=scores)
        if args.recovers:
            recovered = _finetune(model, train_dataset, tokenizer, args, scratch, teacher=teacher)
    done.update(args.recovery_record(*recovered, distilled=teacher is not None))
    if report is not None and pruning == "unstructured":
        done["pruning_scope"] = report.scope
    elif report is not None:
        done.update(importance=report.importance, removed_layers=report.removed_layers, layer_share=args.layer_share)
    done.update(num_hidden_layers=model.config.num_hidden_layers, intermediate_size=model.config.intermediate_size)
    return done
