"""Budgeted masked-LM pretraining: the library behind ``recipes/run_mlm.py``.

The defaults form a recipe made for short budgets, each part switchable: a pre-LayerNorm RoBERTa
(``--architecture``), the MLM head computed on masked positions only (``--sparse_prediction``), no dropout
(``--dropout``), a high peak learning rate with a short warmup and a linear decay that reaches zero at the
deadline, AdamW betas (0.9, 0.98), gradient clipping at 0.5 and a position table that starts as sine waves
(``--position_init``). The saved model is a stock
``RobertaPreLayerNormForMaskedLM`` (or ``RobertaForMaskedLM``) that the Auto classes load.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    RobertaForMaskedLM,
    set_seed,
)
from transformers.utils import logging

from .curves import plot_run
from .data import (
    DEFAULT_CORPUS_NAME,
    MaskedLMCollator,
    data_files,
    load_text_datasets,
    mask_once,
    pack_texts,
    train_tokenizer,
    unigram_loss,
)
from .errors import UsageError
from .sizes import (
    ARCHITECTURES,
    check_config,
    check_dropout,
    count_parameters,
    get_model_size,
    roberta_config,
    training_flops_per_token,
)
from .training import (
    BudgetTrainer,
    BudgetTrainingArguments,
    describe_stop,
    hardware_summary,
    load_model_config,
    native_bf16_field,
    prepare_output_dir,
    record_preemption,
    write_json,
)

logger = logging.get_logger(__name__)


@dataclass
class ModelArguments:
    """Which model to pretrain: a size preset, or an existing checkpoint to continue."""

    model_size: Optional[str] = field(
        default="L2-H128",
        metadata={"help": "Size preset L{layers}-H{hidden} (RoBERTa shapes: heads = hidden/64, FFN = 4 x hidden), "
                  "e.g. L12-H768. See hf_tbc.sizes.MODEL_SIZES."},
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Continue pretraining this checkpoint instead of a fresh --model_size."}
    )
    config_overrides: Optional[str] = field(
        default=None, metadata={"help": "Override config values, e.g. 'hidden_dropout_prob=0.0,num_attention_heads=4'."}
    )
    tokenizer_name: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer to use; by default a byte-level BPE is trained on the training text."}
    )
    vocab_size: int = field(default=8192, metadata={"help": "Vocabulary size of the trained tokenizer."})
    architecture: str = field(
        default="roberta-prelayernorm",
        metadata={"help": "Model class of a fresh --model_size: 'roberta-prelayernorm' (LayerNorm before each sublayer: "
                  "stable at the high learning rates of short budgets) or 'roberta' (post-LayerNorm, as released).",
                  "choices": list(ARCHITECTURES)},
    )
    dropout: Optional[float] = field(
        default=0.0,
        metadata={"help": "Hidden and attention dropout of a fresh model while pretraining (0: a budget too short to "
                  "overfit gains nothing from it). Finetuning sets its own. Unset: the config's 0.1."},
    )
    sparse_prediction: bool = field(
        default=True,
        metadata={"help": "Run the MLM head (the vocabulary projection) on the masked positions only, not on every "
                  "position: the same loss, and at small sizes most of the step's cost saved."},
    )
    position_init: str = field(
        default="sinusoidal",
        metadata={"help": "Initial values of a fresh model's learned position embeddings: 'sinusoidal' (the "
                  "Transformer's sine and cosine waves, scaled to the word embeddings' size: nearby positions start "
                  "alike, so attending by offset need not be learned position by position; measured to reach a lower "
                  "loss sooner at L2-H128 and L4-H256) or 'random' (noise, as transformers initializes them). The "
                  "embeddings stay trainable and the saved class is unchanged.",
                  "choices": ["random", "sinusoidal"]},
    )


MLM_PROBABILITY = 0.15  # BERT's; 0.4 helps L4-H256 but hurts L2-H128 badly (README, "Masking more")


@dataclass
class DataTrainingArguments:
    """What text to pretrain on. With no dataset and no file, the built-in corpus is used."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset, e.g. 'wikitext'."})
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Its config, e.g. 'wikitext-103-raw-v1'."})
    train_file: Optional[str] = field(default=None, metadata={"help": "Training text: .txt, .csv, .tsv, .json or .jsonl."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Validation text, same format."})
    text_column: Optional[str] = field(
        default=None,
        metadata={"help": "Column holding the text (default: 'text', else 'sentence' or 'content'). Several, separated "
                  "by commas (e.g. 'sentence,premise,hypothesis'): every listed column a file has is used, each a text, "
                  "row by row (a pair's two sides stay next to each other), so files with different columns mix."},
    )
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of train held out for validation when there is no validation split."}
    )
    block_size: int = field(default=128, metadata={"help": "Tokens per packed training block."})
    mlm_probability: float = field(
        default=MLM_PROBABILITY,
        metadata={"help": "Fraction of tokens masked in training blocks (default 0.15, as BERT). Measured on 2 CPU cores for 10 "
                  "minutes, 0.4 reaches a lower validation loss at L4-H256 (-0.12 nat) but a far higher one at L2-H128 "
                  "(+0.69), whose steps it slows 2x: try it for larger models, not as a default."},
    )
    eval_mlm_probability: float = field(
        default=0.15,
        metadata={"help": "Fraction masked in the fixed validation blocks, apart from --mlm_probability so that "
                  "validation losses of runs that mask differently compare (0.15, as BERT)."},
    )
    max_eval_samples: Optional[int] = field(
        default=2000, metadata={"help": "Evaluate on at most this many blocks (keeps evaluations short)."}
    )
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for tokenization."})


@dataclass
class PretrainingArguments(BudgetTrainingArguments):
    """``BudgetTrainingArguments`` with defaults for pretraining from scratch under a short budget: a peak LR twice
    RoBERTa's with a short warmup, AdamW betas (0.9, 0.98) as in RoBERTa, and gradient clipping at 0.5."""

    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_ratio: float = field(default=0.02, metadata={"help": "Warmup, as a fraction of the budget (or of max_steps)."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (RoBERTa's 0.98: steadier with large LRs)."})
    max_grad_norm: float = field(default=0.5, metadata={"help": "Clip the gradient norm to this value."})
    bf16: Optional[bool] = native_bf16_field()
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Blocks per device per step."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Blocks per device per evaluation step."})
    ddp_find_unused_parameters: Optional[bool] = field(
        default=False, metadata={"help": "RoBERTa's MLM uses every parameter, so DDP need not search for unused ones."}
    )


def validate(model_args: ModelArguments, data_args: DataTrainingArguments) -> None:
    """Checks the arguments that need no data, so bad input fails before anything loads or is written."""
    if model_args.model_name_or_path is not None:
        load_model_config(model_args.model_name_or_path)
    else:
        get_model_size(model_args.model_size)
        positions = 514
        if model_args.config_overrides:
            probe = roberta_config(model_args.model_size, model_args.vocab_size, config_overrides=model_args.config_overrides,
                                   architecture=model_args.architecture)
            positions = probe.max_position_embeddings
        if data_args.block_size > positions - 2:
            raise UsageError(
                f"--block_size {data_args.block_size} exceeds the model's {positions - 2} positions: lower it, or raise "
                f"max_position_embeddings with --config_overrides 'max_position_embeddings={data_args.block_size + 2}'"
            )
    if data_args.block_size < 8:
        raise UsageError(f"--block_size {data_args.block_size} is too small: use at least 8 tokens")
    for flag in ("mlm_probability", "eval_mlm_probability"):
        if not 0 < getattr(data_args, flag) < 1:
            raise UsageError(f"--{flag} {getattr(data_args, flag)} must be in (0, 1)")
    if model_args.dropout is not None:
        check_dropout(model_args.dropout)
    if model_args.vocab_size < 300:
        raise UsageError(f"--vocab_size {model_args.vocab_size} is below the 256 bytes + special tokens: use >= 300")


def build_model(model_args: ModelArguments, tokenizer, block_size: int) -> RobertaForMaskedLM:
    """A fresh RoBERTa of ``model_size`` and ``architecture`` (or the checkpoint ``model_name_or_path``) sized for
    ``tokenizer``; ``dropout`` applies to fresh models (a continued checkpoint keeps its own unless overridden)."""
    if model_args.model_name_or_path is not None:
        config = load_model_config(model_args.model_name_or_path)
        if model_args.config_overrides:
            config.update_from_string(model_args.config_overrides)
        check_config(config)
        model = AutoModelForMaskedLM.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        config = roberta_config(
            model_args.model_size,
            vocab_size=len(tokenizer),
            config_overrides=model_args.config_overrides,
            architecture=model_args.architecture,
            dropout=model_args.dropout,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model = AutoModelForMaskedLM.from_config(config)
        if model_args.position_init == "sinusoidal":
            sinusoidal_positions_(model.base_model.embeddings.position_embeddings, config.initializer_range)
    offset = (config.pad_token_id or 0) + 1 if config.model_type in ("roberta", "xlm-roberta") else 0
    if block_size + offset > config.max_position_embeddings:
        raise UsageError(
            f"--block_size {block_size} exceeds the model's {config.max_position_embeddings - offset} positions: lower it"
        )
    return model


def sinusoidal_positions_(embedding: torch.nn.Embedding, std: float) -> None:
    """Fills a learned position table in place with sine and cosine waves of geometric wavelengths (row ``p``,
    columns ``2i`` and ``2i+1``: sin and cos of ``p / 10000^(2i/dim)``), scaled to standard deviation ``std``;
    a padding row stays zero. A relative offset is then a fixed rotation of the table, the same at every position."""
    rows, dim = embedding.weight.shape
    position = torch.arange(rows, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(rows, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    table *= std / table.std()
    if embedding.padding_idx is not None:
        table[embedding.padding_idx] = 0.0
    with torch.no_grad():
        embedding.weight.copy_(table.to(embedding.weight.dtype))


def masked_lm_head(model: torch.nn.Module) -> Optional[torch.nn.Module]:
    """The module of a masked LM that maps hidden states to vocabulary logits (``lm_head`` in the RoBERTa family,
    ``cls`` in BERT's), or ``None`` when the model has neither."""
    for name in ("lm_head", "cls"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    return None


class SparsePrediction:
    """Computes a stock masked LM's head only at the masked positions, while it trains and evaluates.

    Two hooks, no change to the model's class or weights: one before the model's forward keeps the positions
    whose label is not -100 and passes only their labels on; one before the head picks those positions from
    the hidden states. The model's own loss (a mean cross-entropy over the labels it gets) is then the same
    number as with the full head, for a fraction (the masking probability) of the head's cost. Without
    labels (inference) both hooks do nothing. Use as a context manager, or call :meth:`remove`.
    """

    def __init__(self, model: torch.nn.Module):
        self.head = masked_lm_head(model)
        if self.head is None:
            raise UsageError(f"{type(model).__name__} has no lm_head or cls module to make sparse: pass --sparse_prediction false")
        self._positions: Optional[torch.Tensor] = None
        self._handles = [
            model.register_forward_pre_hook(self._select_labels, with_kwargs=True),
            self.head.register_forward_pre_hook(self._select_positions),
        ]

    def _select_labels(self, module, args, kwargs):
        labels = kwargs.get("labels")
        if labels is None:
            self._positions = None
            return None
        self._positions = labels != -100
        return args, {**kwargs, "labels": labels[self._positions]}

    def _select_positions(self, module, args):
        if self._positions is None:
            return None
        hidden = args[0]
        positions, self._positions = self._positions.to(hidden.device), None
        return (hidden[positions], *args[1:])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "SparsePrediction":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def pretrain(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: PretrainingArguments) -> dict:
    """Pretrains a masked LM under ``training_args.time_budget`` and writes a loadable ``output_dir``.

    Returns the run summary also written to ``output_dir/run_summary.json``.
    """
    validate(model_args, data_args)
    resume_from = prepare_output_dir(training_args)
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="loading and tokenizing the corpus"):
        texts = load_text_datasets(
            data_args.dataset_name,
            data_args.dataset_config_name,
            data_args.train_file,
            data_args.validation_file,
            data_args.text_column,
            data_args.validation_split_percentage,
            seed=training_args.seed,
        )
        if model_args.tokenizer_name:
            tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name)
        elif model_args.model_name_or_path:
            tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
        else:
            tokenizer = train_tokenizer(texts["train"], vocab_size=model_args.vocab_size)
        blocks = {
            split: pack_texts(texts[split], tokenizer, data_args.block_size, data_args.preprocessing_num_workers)
            for split in ("train", "validation")
        }
    if data_args.max_eval_samples is not None and len(blocks["validation"]) > data_args.max_eval_samples:
        blocks["validation"] = blocks["validation"].select(range(data_args.max_eval_samples))

    reference = unigram_loss(blocks["train"], blocks["validation"], tokenizer.all_special_ids, len(tokenizer))
    blocks["validation"] = mask_once(blocks["validation"], tokenizer, data_args.eval_mlm_probability, training_args.seed)
    model = build_model(model_args, tokenizer, data_args.block_size)
    sparse = SparsePrediction(model) if model_args.sparse_prediction else None
    parameters = count_parameters(model.config)
    flops_per_token = training_flops_per_token(
        model.config, data_args.block_size, data_args.mlm_probability if sparse is not None else 1.0)
    size_name = model_args.model_size if model_args.model_name_or_path is None else model_args.model_name_or_path
    logger.warning(
        f"{size_name}: {model.num_parameters():,} parameters ({parameters['non_embedding']:,} non-embedding), "
        f"{flops_per_token / 1e6:.1f} MFLOPs per training token; {len(blocks['train']):,} training blocks of "
        f"{data_args.block_size} tokens; unigram loss of the validation blocks {reference:.3f} (a model must get below it)"
    )

    trainer = BudgetTrainer(
        model=model,
        args=training_args,
        train_dataset=blocks["train"],
        eval_dataset=blocks["validation"],
        data_collator=MaskedLMCollator(tokenizer, mlm_probability=data_args.mlm_probability),
        processing_class=tokenizer,
    )
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resume_from)
    budget = trainer.budget
    if budget is not None and budget.stop_reason == "preempted":
        return record_preemption(trainer, "run_summary.json", model_size=size_name)

    evaluations = [row for row in trainer.state.log_history if "eval_loss" in row]
    if not evaluations or evaluations[-1]["step"] != trainer.state.global_step:
        trainer.evaluate()
        evaluations = [row for row in trainer.state.log_history if "eval_loss" in row]
    if sparse is not None:
        sparse.remove()
    trainer.save_model()

    stop_steps = trainer.accelerator.gather(torch.tensor([trainer.state.global_step], device=training_args.device))
    train_seconds = budget.train_seconds() if budget else time.monotonic() - started
    tokens = trainer.state.num_input_tokens_seen
    summary = {
        "model_size": size_name,
        "parameters": model.num_parameters(),
        "non_embedding_parameters": parameters["non_embedding"],
        "training_flops_per_token": flops_per_token,
        "config": {key: getattr(model.config, key) for key in (
            "model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size",
            "hidden_dropout_prob", "attention_probs_dropout_prob")},
        "sparse_prediction": sparse is not None,
        "position_init": model_args.position_init if model_args.model_name_or_path is None else None,
        "corpus": data_args.dataset_name or data_args.train_file or DEFAULT_CORPUS_NAME,
        "dataset_name": data_args.dataset_name,
        "dataset_config_name": data_args.dataset_config_name,
        "corpus_files": data_files(data_args.train_file),
        "block_size": data_args.block_size,
        "mlm_probability": data_args.mlm_probability,
        "eval_mlm_probability": data_args.eval_mlm_probability,
        "time_budget_s": budget.time_budget if budget else None,
        "budget_includes_eval": training_args.budget_includes_eval,
        "stop_reason": budget.stop_reason if budget else "max_steps",
        "deadline_overshoot_s": round(budget.overshoot, 3) if budget and budget.overshoot is not None else None,
        "model_saved": True,
        "train_s": round(train_seconds, 3),
        "total_s": round(budget.total_seconds() if budget else time.monotonic() - started, 3),
        "steps": trainer.state.global_step,
        "tokens": tokens,
        "train_tokens_per_s": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
        "achieved_flops_per_s": round(tokens * flops_per_token / train_seconds) if train_seconds > 0 else None,
        "final_eval_loss": evaluations[-1]["eval_loss"] if evaluations else None,
        "unigram_loss": round(reference, 4),
        "below_unigram": round(reference - evaluations[-1]["eval_loss"], 4) if evaluations else None,
        "world_size": training_args.world_size,
        "stop_step_per_rank": stop_steps.tolist(),
        "parallel_mode": training_args.parallel_mode.value,
        "ddp": type(trainer.model_wrapped).__name__ == "DistributedDataParallel",
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
        "per_device_train_batch_size": training_args.per_device_train_batch_size,
        "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
        "learning_rate": training_args.learning_rate,
        "warmup_ratio": training_args.warmup_ratio,
        "adam_betas": [training_args.adam_beta1, training_args.adam_beta2],
        "max_grad_norm": training_args.max_grad_norm,
        "schedule": f"{training_args.lr_scheduler_type.value} by {training_args.schedule_by}",
        "resumed_from": resume_from,
        "hardware": hardware_summary(),
    }
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / "run_summary.json", summary)
        plot_run(training_args.output_dir, label=size_name, unigram_loss=reference)
        logger.warning(
            f"Stopped: {describe_stop(budget)}; {summary['steps']} steps, {tokens:,} tokens, "
            f"final eval loss {summary['final_eval_loss']} (unigram loss {reference:.3f}); model in {training_args.output_dir}"
        )
    return summary
