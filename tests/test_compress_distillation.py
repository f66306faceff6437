import pytest
import torch
from datasets import Dataset
from transformers import RobertaConfig, RobertaForSequenceClassification, Trainer, TrainingArguments

from hf_tbc.compress.distillation import DistillationMixin, distillation_loss
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
