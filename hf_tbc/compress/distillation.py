"""Knowledge distillation in recovery: a pruned student learns from its dense parent's predictions as well as from
the labels (Hinton et al. 2015). Width and depth pruning followed by logit distillation from the unpruned model is
what Minitron (Muralidharan et al. 2024) found to beat training the small shape from scratch; for translation this is
word-level distillation (Kim & Rush 2016), the teacher's distribution over the next target token at every position.

The loss of a batch is ``(1 - alpha) * task loss + alpha * T**2 * KL(teacher || student)``, both distributions at
temperature ``T`` and the KL averaged over the positions that carry a label (every example for a classifier; the
masked tokens of MLM; the target tokens of translation, padding left out). ``T**2`` keeps the gradient's scale
independent of the temperature.
"""

from __future__ import annotations

from typing import Optional

import torch
from transformers import PreTrainedModel

from ..errors import UsageError

IGNORE_INDEX = -100  # transformers' label for a position without a target


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: Optional[torch.Tensor] = None,
    temperature: float = 2.0,
) -> torch.Tensor:
    """``T**2 * KL(teacher || student)`` at temperature ``T``, averaged over the positions whose label is not
    ``IGNORE_INDEX`` (over all positions without ``labels``)."""
    if student_logits.shape != teacher_logits.shape:
        raise UsageError(
            f"the student's logits {tuple(student_logits.shape)} and the teacher's {tuple(teacher_logits.shape)} "
            "differ: distill from a parent with the same vocabulary or labels"
        )
    student = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    divergence = (teacher.exp() * (teacher - student)).sum(-1)
    if labels is not None and labels.shape == divergence.shape:
        divergence = divergence[labels != IGNORE_INDEX]
    if divergence.numel() == 0:
        return student_logits.sum() * 0.0
    return divergence.mean() * temperature**2


class DistillationMixin:
    """Put before a ``Trainer`` class (``class T(DistillationMixin, Trainer)``): with a ``teacher``, each training
    loss mixes the task loss with :func:`distillation_loss` (weight ``distill_alpha``); without one it is the
    Trainer's own. The teacher is frozen, in evaluation mode, on the student's device. The mixed loss is a mean over
    each micro-batch (recovery runs without gradient accumulation)."""

    def __init__(
        self,
        *args,
        teacher: Optional[PreTrainedModel] = None,
        distill_alpha: float = 0.5,
        distill_temperature: float = 2.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if not 0.0 <= distill_alpha <= 1.0 or distill_temperature <= 0:
            raise UsageError(
                f"--distill_alpha {distill_alpha} must be in [0, 1] and --distill_temperature {distill_temperature} "
                "above 0"
            )
        self.teacher, self.distill_alpha, self.distill_temperature = teacher, distill_alpha, distill_temperature
        if teacher is not None:
            teacher.to(self.args.device).eval().requires_grad_(False)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.teacher is None or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.get("labels")  # read first: a label smoother pops them
        # the task loss as the Trainer computes it (label smoothing included), a mean over this micro-batch
        loss, outputs = super().compute_loss(model, dict(inputs), return_outputs=True)
        teacher_inputs = {key: value for key, value in inputs.items() if key != "labels"}
        if self.teacher.config.is_encoder_decoder and "decoder_input_ids" not in inputs and labels is not None:
            teacher_inputs["labels"] = labels  # a batch the collator left unshifted: the teacher shifts them itself
        with torch.no_grad():
            teacher_logits = self.teacher(**teacher_inputs).logits
        soft = distillation_loss(outputs.logits, teacher_logits, labels, self.distill_temperature)
        loss = (1 - self.distill_alpha) * loss + self.distill_alpha * soft
        return (loss, outputs) if return_outputs else loss


class SequenceDistillationMixin:
    """Put before :class:`DistillationMixin` on a seq2seq Trainer: with ``distill_beams`` above 0 and a teacher, each
    training batch's targets are the teacher's own beam-search translations of its sources instead of the references
    (sequence-level distillation, Kim & Rush 2016: the student imitates what the teacher outputs, not every path it
    weighs), and the word-level loss then follows those targets. Generation runs inside the step, so it counts
    against recovery's time budget like the rest of the step."""

    def __init__(self, *args, distill_beams: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if distill_beams < 0:
            raise UsageError(f"--distill_beams {distill_beams} must be 0 (the references) or a number of beams")
        self.distill_beams = distill_beams

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.distill_beams and getattr(self, "teacher", None) is not None and model.training:
            inputs = teacher_targets(self.teacher, inputs, self.distill_beams)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


@torch.no_grad()
def teacher_targets(teacher: PreTrainedModel, inputs: dict, beams: int) -> dict:
    """``inputs`` with ``labels`` and ``decoder_input_ids`` replaced by ``teacher``'s beam-search output for its
    sources (at most 1.5 times the references' length plus 5 tokens; padding after the end is no target)."""
    limit = int(inputs["labels"].shape[1] * 1.5) + 5 if "labels" in inputs else None
    sequences = teacher.generate(
        input_ids=inputs["input_ids"],
        attention_mask=inputs.get("attention_mask"),
        num_beams=beams,
        do_sample=False,
        max_new_tokens=limit,
    )
    labels = sequences[:, 1:].clone()  # the output after the decoder's start token
    labels[labels == teacher.config.pad_token_id] = IGNORE_INDEX
    kept = {key: value for key, value in inputs.items() if key not in ("labels", "decoder_input_ids")}
    return {**kept, "labels": labels, "decoder_input_ids": sequences[:, :-1]}
