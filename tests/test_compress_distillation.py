import pytest
import torch
from datasets import Dataset
from transformers import (
    M2M100Config,
    M2M100ForConditionalGeneration,
    RobertaConfig,
    RobertaForSequenceClassification,
    Trainer,
    TrainingArguments,
)

from hf_tbc.compress.distillation import (
    IGNORE_INDEX,
    DistillationMixin,
    SequenceDistillationMixin,
    distillation_loss,
    teacher_targets,
)
from hf_tbc.errors import UsageError


def test_the_loss_is_zero_for_the_teachers_own_logits_and_ignores_unlabelled_positions():
    torch.manual_seed(0)
    teacher = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, -100, 3, -100], [4, -100, -100, 5, 6]])
    assert distillation_loss(teacher.clone(), teacher, labels).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(2, 5, 7)
    loss = distillation_loss(student, teacher, labels)
    assert loss.item() > 0
    moved = student.clone()
    moved[labels == -100] += 5.0  # only positions without a label change
    assert distillation_loss(moved, teacher, labels).item() == pytest.approx(loss.item())
    with pytest.raises(UsageError, match="differ: distill from a parent with the same vocabulary"):
        distillation_loss(torch.randn(2, 5, 6), teacher, labels)


def tiny_classifier(seed: int) -> RobertaForSequenceClassification:
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=3
    )
    return RobertaForSequenceClassification(config)


class DistillingTrainer(DistillationMixin, Trainer):
    pass


@torch.no_grad()
def divergence(student, teacher, data) -> float:
    ids = torch.tensor(data["input_ids"])
    return distillation_loss(student.eval()(input_ids=ids).logits, teacher.eval()(input_ids=ids).logits).item()


def test_a_student_trained_with_the_teacher_moves_towards_it_and_without_one_trains_as_before(tmp_path):
    generator = torch.Generator().manual_seed(3)
    data = Dataset.from_dict(
        {"input_ids": torch.randint(3, 40, (32, 8), generator=generator).tolist(), "labels": [0, 1, 2, 1] * 8}
    )
    teacher = tiny_classifier(1)
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=30, learning_rate=3e-3, report_to=[], save_strategy="no", use_cpu=True
    )
    student = tiny_classifier(2)
    before = divergence(student, teacher, data)
    DistillingTrainer(model=student, args=args, train_dataset=data, teacher=teacher, distill_alpha=1.0).train()
    assert divergence(student, teacher, data) < 0.5 * before
    plain = tiny_classifier(2)
    DistillingTrainer(model=plain, args=args, train_dataset=data).train()  # no teacher: the task loss alone
    assert divergence(plain, teacher, data) > divergence(student, teacher, data)
    with pytest.raises(UsageError, match="--distill_alpha 1.5 must be in"):
        DistillingTrainer(model=plain, args=args, train_dataset=data, teacher=teacher, distill_alpha=1.5)


def tiny_translator(seed: int) -> M2M100ForConditionalGeneration:
    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=40,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        dropout=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    return M2M100ForConditionalGeneration(config).eval()


class SequenceDistillingTrainer(SequenceDistillationMixin, DistillationMixin, Trainer):
    pass


def pairs(count: int) -> dict:
    generator = torch.Generator().manual_seed(5)
    labels = torch.randint(3, 40, (count, 5), generator=generator)
    return {
        "input_ids": torch.randint(3, 40, (count, 6), generator=generator),
        "attention_mask": torch.ones(count, 6, dtype=torch.long),
        "labels": labels,
        "decoder_input_ids": torch.cat([torch.full((count, 1), 2), labels[:, :-1]], 1),  # as the collator shifts
    }


def test_the_targets_are_the_teachers_own_beam_search_output_after_its_start_token():
    teacher, batch = tiny_translator(1), pairs(4)
    targets = teacher_targets(teacher, batch, beams=2)
    generated = teacher.generate(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=2, max_new_tokens=12
    )
    expected = generated[:, 1:].clone()
    expected[expected == 1] = IGNORE_INDEX  # padding after a sentence's end is no target
    assert torch.equal(targets["labels"], expected)
    assert torch.equal(targets["decoder_input_ids"], generated[:, :-1]) and (generated[:, 0] == 2).all()
    assert torch.equal(targets["input_ids"], batch["input_ids"])  # the sources stay


@torch.no_grad()
def loss_on(model, batch) -> float:
    return model.eval()(**batch).loss.item()


def test_a_student_distilled_on_sequences_learns_what_the_teacher_outputs_not_the_references(tmp_path):
    teacher, data = tiny_translator(1), pairs(16)
    on_teacher = teacher_targets(teacher, data, beams=2)
    dataset = Dataset.from_dict({key: value.tolist() for key, value in data.items()})
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=40, learning_rate=3e-3, report_to=[], save_strategy="no", use_cpu=True
    )
    trained = {}
    for beams in (0, 2):  # alpha 0: the task loss alone, on the references (0 beams) or on the teacher's outputs
        student = tiny_translator(2)
        SequenceDistillingTrainer(
            model=student, args=args, train_dataset=dataset, teacher=teacher, distill_alpha=0.0, distill_beams=beams
        ).train()
        trained[beams] = student
    assert loss_on(trained[2], on_teacher) < 0.7 * loss_on(trained[0], on_teacher)
    assert loss_on(trained[0], data) < loss_on(trained[2], data)
    with pytest.raises(UsageError, match="--distill_beams -1 must be 0"):
        SequenceDistillingTrainer(model=trained[0], args=args, train_dataset=dataset, teacher=teacher, distill_beams=-1)


def test_a_seq2seq_batch_without_decoder_inputs_is_distilled_as_one_with_them(tmp_path):
    """A collator that leaves the labels unshifted (no decoder_input_ids): the student shifts them itself, and so
    must the teacher, whose forward would otherwise have no decoder input at all."""
    teacher, batch = tiny_translator(1), pairs(4)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = DistillingTrainer(model=tiny_translator(2), args=args, teacher=teacher, distill_alpha=0.5)
    trainer.model.train()
    torch.manual_seed(0)  # the student's attention dropout draws the same masks in both
    shifted = trainer.compute_loss(trainer.model, dict(batch))
    torch.manual_seed(0)
    unshifted = trainer.compute_loss(
        trainer.model, {key: value for key, value in batch.items() if key != "decoder_input_ids"}
    )
    assert torch.isclose(shifted, unshifted, atol=1e-5)
