"""One training step of a tiny masked LM under ``accelerate launch`` (one process or several), recorded for a test.

    accelerate launch --multi_gpu --num_processes 2 tests/ddp_probe.py OUT

The global batch is always the same four pre-masked blocks, with 1, 2, 4 and 9 masked positions: however the
sampler splits them over ranks, the ranks hold different label counts, so a per-rank mean averaged over ranks
differs from the mean over the global batch. Rank 0 writes ``OUT/initial`` (the model before the step),
``OUT/gradients.pt`` (the gradient the optimizer sees, after DDP's average) and ``OUT/logged.json`` (the logged
loss and gradient norm, and the loss of evaluating the same four blocks).
"""

import json
import sys
from pathlib import Path

import torch
from datasets import Dataset
from transformers import RobertaPreLayerNormForMaskedLM, TrainerCallback, default_data_collator

from hf_tbc.budget.arguments import BudgetTrainingArguments
from hf_tbc.budget.trainer import BudgetTrainer
from hf_tbc.tasks.mlm.model import roberta_config

MASKED = (1, 2, 4, 9)
LENGTH = 16


def blocks() -> Dataset:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for count in MASKED:
        ids = torch.randint(5, 300, (LENGTH,), generator=generator)
        labels = torch.full((LENGTH,), -100)
        labels[:count] = ids[:count]
        ids[:count] = 4  # the mask token's id
        rows.append({"input_ids": ids.tolist(), "attention_mask": [1] * LENGTH, "labels": labels.tolist()})
    return Dataset.from_list(rows)


def model() -> RobertaPreLayerNormForMaskedLM:
    torch.manual_seed(0)
    config = roberta_config(
        "L2-H32",
        vocab_size=300,
        architecture="roberta-prelayernorm",
        dropout=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return RobertaPreLayerNormForMaskedLM(config)


class GradientRecorder(TrainerCallback):
    """Copies the gradients the optimizer is about to apply (after clipping and DDP's all-reduce)."""

    def __init__(self, model):
        self.model, self.gradients = model, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.gradients = {
            name: p.grad.detach().clone() for name, p in self.model.named_parameters() if p.grad is not None
        }


def main(out: Path) -> None:
    world = int(__import__("os").environ.get("WORLD_SIZE", "1"))
    net = model()
    data = blocks()
    args = BudgetTrainingArguments(
        output_dir=str(out / "run"),
        max_steps=1,
        per_device_train_batch_size=len(MASKED) // world,
        per_device_eval_batch_size=len(MASKED) // world,
        learning_rate=0.0,
        max_grad_norm=1e9,
        logging_steps=1,
        disable_tqdm=True,
        save_strategy="no",
        report_to="none",
        seed=0,
        bf16=False,
        dataloader_num_workers=0,
    )
    if args.process_index == 0:
        net.save_pretrained(out / "initial")
    recorder = GradientRecorder(net)
    trainer = BudgetTrainer(
        model=net,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        data_collator=default_data_collator,
        callbacks=[recorder],
    )
    trainer.train()
    evaluated = trainer.evaluate()["eval_loss"]
    logged = next(row for row in trainer.state.log_history if "loss" in row)
    if args.process_index == 0:
        torch.save(recorder.gradients, out / "gradients.pt")
        (out / "logged.json").write_text(
            json.dumps(
                {
                    "loss": logged["loss"],
                    "grad_norm": logged["grad_norm"],
                    "eval_loss": evaluated,
                    "world_size": args.world_size,
                }
            )
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
