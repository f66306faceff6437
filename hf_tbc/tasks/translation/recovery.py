"""How one variant of a translation model is made: pruned (feed-forward neurons, or to a smaller shape) and
recovered on the translation loss, with the dense model's next-token distributions as well unless ``--no_distill``
(its beam-search translations as the targets with ``--distill_beams``); its teacher-forced validation loss before
and after. ``compress.py`` runs this for every variant of the grid."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoModelForSeq2SeqLM

from ...budget.trainer import BudgetSeq2SeqTrainer
from ...compress.arguments import CompressionArguments
from ...compress.distillation import DistillationMixin, SequenceDistillationMixin
from ...compress.seq2seq import prune_feed_forward
from ...compress.shape import measure_importance, parse_shape, prune_to_shape, shape_of
from .arguments import TranslationTrainingArguments
from .data import TranslationCollator


class DistillingSeq2SeqTrainer(SequenceDistillationMixin, DistillationMixin, BudgetSeq2SeqTrainer):
    """Recovery on a budget with a teacher: the translation loss mixed with the dense model's next-token
    distributions at every target position, the targets the references or (``--distill_beams``) the teacher's own
    beam-search translations."""


def _recover(
    model, train_encoded, tokenizer, args: CompressionArguments, scratch: Path, teacher=None
) -> tuple[float, int]:
    """Recovery training on the translation loss for ``recovery_steps`` or ``recovery_time_budget``, learning from
    ``teacher``'s logits as well where one is given; returns the seconds it took and the optimizer steps it ran."""
    training_args = TranslationTrainingArguments(
        output_dir=str(scratch),
        max_steps=args.recovery_steps or -1,
        time_budget=args.recovery_time_budget,
        learning_rate=args.recovery_lr,
        lr_scheduler_type="linear",  # recovery decays from the start, without warmup, as it always has
        warmup_ratio=0.0,
        warmup_steps=0,
        save_strategy="no",
        eval_strategy="no",
        predict_with_generate=False,
        disable_tqdm=True,
        seed=args.seed,
        schedule_by="steps" if args.recovery_steps else None,
        report_to=[],
        logging_strategy="no",
    )
    distill = dict(
        teacher=teacher,
        distill_alpha=args.distill_alpha,
        distill_temperature=args.distill_temperature,
        distill_beams=args.distill_beams,
    )
    trainer = (DistillingSeq2SeqTrainer if teacher is not None else BudgetSeq2SeqTrainer)(
        model=model,
        args=training_args,
        train_dataset=train_encoded,
        data_collator=TranslationCollator(tokenizer, model=model, pad_to_multiple_of=8),
        processing_class=tokenizer,
        **(distill if teacher is not None else {}),
    )
    start = time.perf_counter()
    trainer.train()
    model.eval()
    return time.perf_counter() - start, trainer.state.global_step


def _batches(encoded, tokenizer, model, batch_size: int = 32, count: Optional[int] = None):
    """Padded batches of ``encoded`` pairs (source, ``labels`` and ``decoder_input_ids``), in order."""
    collator = TranslationCollator(tokenizer, model=model, pad_to_multiple_of=8)
    end = len(encoded) if count is None else min(len(encoded), count * batch_size)
    for start in range(0, end, batch_size):
        yield dict(collator([encoded[index] for index in range(start, min(start + batch_size, end))]))


@torch.no_grad()
def validation_loss(model, encoded, tokenizer) -> float:
    """Teacher-forced cross-entropy (nats per target token, no label smoothing) of ``model`` on ``encoded`` pairs."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in _batches(encoded, tokenizer, model, batch_size=64):
        count = int(batch["labels"].ne(-100).sum())
        total += float(model(**batch).loss) * count
        tokens += count
    return total / max(tokens, 1)


def build_variant(
    kind: str, value, args: CompressionArguments, tokenizer, validation_encoded, train_encoded, scratch: Path
):
    """The model of one build of the grid, pruned (``kind`` ``"ffn"`` with a sparsity, or ``"shape"`` with a size
    name) and recovered, and what was done, for the record."""
    torch.manual_seed(args.seed)
    dense = AutoModelForSeq2SeqLM.from_pretrained(args.model_name_or_path)
    done = {"parent_ffn_dim": [dense.config.encoder_ffn_dim, dense.config.decoder_ffn_dim]}
    pruned = kind == "shape" or value > 0
    if kind == "shape":
        parent = shape_of(dense.config)
        batches = _batches(train_encoded, tokenizer, dense, count=args.importance_batches)
        model, report = prune_to_shape(dense, parse_shape(value, parent), measure_importance(dense, batches))
        done.update(
            parent_shape={"hidden": parent.hidden, "heads": parent.heads, "ffn": parent.ffn, **parent.layers},
            pruning_method="shape",
            pruned=f"to {value}: {report.after.describe()}",
            shape=value,
            kept_layers=report.kept_layers,
            # the share of the parameters removed: what a shape variant has instead of a target sparsity
            target_sparsity=round(1.0 - report.parameters_after / report.parameters_before, 6),
        )
    else:
        model = dense
        if value > 0:
            prune_feed_forward(model, value)
        done.update(
            pruning_method="structured" if value > 0 else None,
            pruned="feed-forward neurons" if value > 0 else None,
            target_sparsity=value,
        )
    teacher = None
    if pruned and args.teacher_used:
        teacher = dense if kind == "shape" else AutoModelForSeq2SeqLM.from_pretrained(args.model_name_or_path)
    if pruned or args.recovers:
        done["loss_before_recovery"] = round(validation_loss(model, validation_encoded, tokenizer), 4)
    seconds, steps = _recover(model, train_encoded, tokenizer, args, scratch, teacher) if args.recovers else (0.0, 0)
    done.update(
        recovery=args.recovers,
        recovery_learning_rate=args.recovery_lr if args.recovers else None,
        **args.recovery_record(seconds, steps, distilled=teacher is not None),
        validation_loss=round(validation_loss(model, validation_encoded, tokenizer), 4),
        encoder_ffn_dim=model.config.encoder_ffn_dim,
        decoder_ffn_dim=model.config.decoder_ffn_dim,
    )
    del teacher, dense
    return model, done
