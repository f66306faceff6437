"""Masking for the masked LM: a fixed count of masked positions per block, afresh in every training batch, and
once, seeded, for the validation blocks."""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase


def masked_positions_per_block(block_size: int, mlm_probability: float) -> int:
    """How many positions of a block of ``block_size`` tokens are masked: ``round(mlm_probability * block_size)``,
    at least one (BERT's own data pipeline masks a fixed count per sequence the same way)."""
    return max(1, round(mlm_probability * block_size))


class MaskedLMCollator(DataCollatorForLanguageModeling):
    """``DataCollatorForLanguageModeling`` that masks exactly :func:`masked_positions_per_block` positions of every
    block (chosen uniformly among its non-special tokens; then 80 % mask token, 10 % random, 10 % kept, as BERT)
    instead of each token independently, so every batch of ``n`` blocks has ``n * k`` labels: the sparse head
    (:class:`~hf_tbc.tasks.mlm.model.SparsePrediction` with ``positions_per_row``) then has one shape, and
    ``torch.compile`` compiles once. Training blocks are masked afresh in every batch; blocks that are already
    masked (they carry ``labels``: the fixed validation set of :func:`mask_once`) pass through unchanged."""

    def __call__(self, examples, return_tensors=None):
        if examples and "labels" in examples[0]:
            return {key: torch.tensor([example[key] for example in examples]) for key in ("input_ids", "labels")}
        return super().__call__(examples, return_tensors)

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        labels = inputs.clone()
        if special_tokens_mask is None:
            special = torch.tensor(
                [
                    self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                    for row in labels.tolist()
                ]
            )
        else:
            special = torch.as_tensor(special_tokens_mask)
        special = special.bool() | (inputs == self.tokenizer.pad_token_id)
        count = min(masked_positions_per_block(inputs.shape[1], self.mlm_probability), inputs.shape[1])
        generator = self.generator if isinstance(getattr(self, "generator", None), torch.Generator) else None
        score = torch.rand(inputs.shape, generator=generator).masked_fill_(special, -1.0)
        chosen = score.topk(count, dim=1).indices
        masked = torch.zeros_like(special).scatter_(1, chosen, True) & ~special
        labels[~masked] = -100
        draw = torch.rand(inputs.shape, generator=generator)
        replaced = masked & (draw < self.mask_replace_prob)
        inputs[replaced] = self.tokenizer.mask_token_id
        randomized = (
            masked & (draw >= self.mask_replace_prob) & (draw < self.mask_replace_prob + self.random_replace_prob)
        )
        random_words = torch.randint(len(self.tokenizer), inputs.shape, generator=generator)
        inputs[randomized] = random_words[randomized]
        return inputs, labels


def mask_once(blocks: Dataset, tokenizer: PreTrainedTokenizerBase, mlm_probability: float, seed: int) -> Dataset:
    """The blocks masked once, as :class:`MaskedLMCollator` masks training blocks, with a seeded generator: every
    evaluation of a run, and every run on the same data, scores the same positions, so the validation curve moves
    only when the model does."""
    collator = MaskedLMCollator(tokenizer, mlm_probability=mlm_probability)
    columns = [name for name in ("input_ids", "special_tokens_mask") if name in blocks.column_names]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        batch = collator([{name: row[name] for name in columns} for row in blocks])
    return Dataset.from_dict({"input_ids": batch["input_ids"].tolist(), "labels": batch["labels"].tolist()})
