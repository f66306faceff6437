"""Budgeted translation training: the library behind ``recipes/run_translation.py``.

An encoder-decoder of an ``E{e}-D{d}-H{h}`` size trains from scratch (or continues a checkpoint) with
``Seq2SeqTrainer`` under a wall-clock budget, with the same clock, resume, SIGTERM handling, time-based LR,
``curve.jsonl`` and ``run_summary.json`` as pretraining. At every evaluation it decodes a fixed validation subset
greedily and records BLEU and chrF (sacreBLEU) next to the loss; decoding time is kept off the budget and recorded.
At the end it scores the full validation and test splits into ``eval_results.json`` and draws
``bleu_vs_time.png``. The saved folder loads with ``AutoModelForSeq2SeqLM`` (and ``pipeline("translation")`` on
transformers 4.x; 5.x removed that pipeline).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from datasets import Dataset
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    Seq2SeqTrainingArguments,
    set_seed,
)
from transformers.utils import logging

from ..curves import plot_curves, plot_run
from ..errors import UsageError
from ..sizes import check_dropout
from ..training import (
    BudgetSeq2SeqTrainer,
    BudgetTrainingArguments,
    describe_stop,
    hardware_summary,
    load_model_config,
    native_bf16_field,
    prepare_output_dir,
    record_preemption,
    write_json,
)
from .bleu import TRANSLATIONS_FILE, TranslationMetrics, copy_source_scores, corpus_scores, decode, write_translations
from .data import TranslationCollator, load_pairs, tokenize_pairs, train_pair_tokenizer
from .sizes import SEQ2SEQ_ARCHITECTURES, get_translation_size, seq2seq_config

logger = logging.get_logger(__name__)

DEFAULT_TRANSLATION_SIZE = "E3-D3-H256"
CURVE_METRICS = ("eval_bleu", "eval_chrf")


@dataclass
class TranslationModelArguments:
    """Which encoder-decoder to train: a size preset, or a checkpoint to continue."""

    model_size: Optional[str] = field(
        default=DEFAULT_TRANSLATION_SIZE,
        metadata={"help": "Size E{encoder layers}-D{decoder layers}-H{hidden} (heads = hidden/64, FFN = 4 x hidden), e.g. "
                  "E6-D6-H512 (the base Transformer). The default learns within minutes on a laptop CPU."},
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Continue training this checkpoint (a run_translation.py folder or Hub model)."}
    )
    tokenizer_name: Optional[str] = field(
        default=None, metadata={"help": "Tokenizer to use; by default one byte-level BPE is trained on both sides of the pairs."}
    )
    vocab_size: int = field(
        default=4000, metadata={"help": "Size of the vocabulary trained on both sides of the pairs (the output layer over "
                                "it is a large share of a small model's step: 4000 halves the step of 8000 at H256)."})
    architecture: str = field(
        default="m2m100",
        metadata={"help": "Model class of a fresh --model_size: 'm2m100' (LayerNorm before each sublayer, fixed "
                  "sinusoidal positions: stable at high learning rates, positions known from the first step), 'mbart' "
                  "(LayerNorm before each sublayer, learned positions) or 'marian' (LayerNorm after each sublayer, as "
                  "in the original Transformer).", "choices": list(SEQ2SEQ_ARCHITECTURES)},
    )
    dropout: float = field(default=0.1, metadata={"help": "Dropout of a fresh model (hidden states)."})
    config_overrides: Optional[str] = field(
        default=None, metadata={"help": "Override config values of a fresh model, e.g. 'attention_dropout=0.1'."}
    )


@dataclass
class TranslationDataArguments:
    """Which pairs to train on: a Hub dataset, or local files with one column per language."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset, e.g. 'wmt14'."})
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Its config, e.g. 'fr-en'."})
    train_file: Optional[str] = field(default=None, metadata={"help": "Training pairs: .tsv, .csv, .json or .jsonl."})
    validation_file: Optional[str] = field(default=None, metadata={"help": "Validation pairs, same format."})
    test_file: Optional[str] = field(default=None, metadata={"help": "Test pairs, scored once at the end."})
    source_lang: str = field(default="en", metadata={"help": "Source language code (a column name or a key of 'translation')."})
    target_lang: str = field(default="fr", metadata={"help": "Target language code."})
    source_column: Optional[str] = field(default=None, metadata={"help": "Column of the source text (default: --source_lang)."})
    target_column: Optional[str] = field(default=None, metadata={"help": "Column of the target text (default: --target_lang)."})
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Percent of train held out for validation when there is no validation split."}
    )
    max_source_length: int = field(default=128, metadata={"help": "Cut source sentences to this many tokens."})
    max_target_length: int = field(default=128, metadata={"help": "Cut target sentences (and generations) to this many tokens."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Train on the first N pairs only."})
    max_eval_samples: Optional[int] = field(
        default=500, metadata={"help": "Pairs of the fixed validation subset decoded at every evaluation (BLEU on the "
                               "curve); the full validation and test splits are scored once at the end."},
    )
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for tokenization."})


@dataclass
class TranslationTrainingArguments(BudgetTrainingArguments, Seq2SeqTrainingArguments):
    """``BudgetTrainingArguments`` for ``Seq2SeqTrainer``, with defaults for training a translation model from scratch
    under a short budget: AdamW betas (0.9, 0.98) and label smoothing 0.1 (Vaswani et al. 2017), a high peak LR with
    a short warmup decaying to zero at the deadline, clipping at 1.0, batches of similar lengths, greedy decoding."""

    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Warmup, as a fraction of the budget (or of max_steps)."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (0.98, as in the Transformer)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip the gradient norm to this value."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    label_smoothing_factor: float = field(default=0.1, metadata={"help": "Label smoothing of the training loss."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Sentence pairs per device per step."})
    per_device_eval_batch_size: int = field(default=100, metadata={"help": "Pairs per device per decoding batch."})
    group_by_length: bool = field(
        default=True, metadata={"help": "Batch pairs of similar length together: far less padding for the same pairs."})
    predict_with_generate: bool = field(default=True, metadata={"help": "Decode at evaluation, for BLEU and chrF."})
    save_strategy: str = field(default="no", metadata={"help": "When to checkpoint: no (the default; --save_every "
                                                        "saves on the budget clock, and a preempted run always saves), steps, epoch."})
    generation_num_beams: Optional[int] = field(default=1, metadata={"help": "Beams when decoding (1: greedy)."})
    bf16: Optional[bool] = native_bf16_field()


def validate(model_args: TranslationModelArguments, data_args: TranslationDataArguments) -> None:
    """Checks what needs no data, so bad input fails before anything loads or is written."""
    if model_args.model_name_or_path is not None:
        config = load_model_config(model_args.model_name_or_path)
        if not getattr(config, "is_encoder_decoder", False):
            raise UsageError(f"--model_name_or_path {model_args.model_name_or_path} is a {config.model_type} model, not an "
                             "encoder-decoder: continue a run_translation.py output, or train a fresh --model_size")
    else:
        get_translation_size(model_args.model_size)
        if model_args.architecture not in SEQ2SEQ_ARCHITECTURES:
            raise UsageError(f"--architecture {model_args.architecture}: choose one of {', '.join(SEQ2SEQ_ARCHITECTURES)}")
    check_dropout(model_args.dropout)
    if model_args.vocab_size < 300:
        raise UsageError(f"--vocab_size {model_args.vocab_size} is below the 256 bytes + special tokens: use >= 300")
    for name in ("max_source_length", "max_target_length"):
        if getattr(data_args, name) < 4:
            raise UsageError(f"--{name} {getattr(data_args, name)} is too small: use at least 4 tokens")


def build_model(model_args: TranslationModelArguments, tokenizer, max_length: int):
    """A fresh encoder-decoder of ``model_size`` sized for ``tokenizer``, or the checkpoint ``model_name_or_path``."""
    if model_args.model_name_or_path is not None:
        return AutoModelForSeq2SeqLM.from_pretrained(model_args.model_name_or_path)
    config = seq2seq_config(
        model_args.model_size,
        vocab_size=len(tokenizer),
        architecture=model_args.architecture,
        dropout=model_args.dropout,
        max_position_embeddings=max_length + 2,
        config_overrides=model_args.config_overrides,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        # the decoder starts from </s>, as in BART and mBART: mBART's own label shifting moves each target's final
        # token (</s> here) to the front whatever the config says, so generation must start from the same token
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    return AutoModelForSeq2SeqLM.from_config(config)


def _set_generation(model, max_target_length: int, num_beams: int) -> None:
    """What ``generate`` and ``pipeline("translation")`` use: the evaluated decoding, saved with the model."""
    generation = model.generation_config
    generation.max_length = max_target_length
    generation.num_beams = num_beams
    generation.decoder_start_token_id = model.config.decoder_start_token_id
    generation.bos_token_id = model.config.bos_token_id
    generation.eos_token_id = model.config.eos_token_id
    generation.forced_eos_token_id = model.config.eos_token_id
    generation.pad_token_id = model.config.pad_token_id


def score_split(trainer: BudgetSeq2SeqTrainer, tokenizer, encoded: Dataset, pairs: Dataset, save_to: Path) -> dict:
    """BLEU, chrF and loss of the trained model on one whole split (greedy decoding), with a few example outputs;
    every translation goes to ``save_to`` (TSV)."""
    output = trainer.predict(encoded, metric_key_prefix="test")
    hypotheses = decode(tokenizer, output.predictions)
    scores = corpus_scores(hypotheses, pairs["target"])
    if trainer.is_world_process_zero():
        write_translations(save_to, pairs["source"], pairs["target"], hypotheses)
    examples = [{"source": pairs[index]["source"], "reference": pairs[index]["target"], "translation": hypotheses[index]}
                for index in range(min(3, len(pairs)))]
    return {**scores, "loss": round(output.metrics.get("test_loss", float("nan")), 4), "examples": len(pairs),
            "distinct": round(len(set(hypotheses)) / max(len(hypotheses), 1), 4), "samples": examples}


def train_translation(model_args: TranslationModelArguments, data_args: TranslationDataArguments,
                      training_args: TranslationTrainingArguments) -> dict:
    """Trains a translation model under ``training_args.time_budget``; writes a loadable ``output_dir`` with
    ``run_summary.json``, ``eval_results.json``, ``curve.jsonl``, ``loss_vs_time.png`` and ``bleu_vs_time.png``."""
    validate(model_args, data_args)
    resume_from = prepare_output_dir(training_args, artifacts=("bleu_vs_time.png", *(
        TRANSLATIONS_FILE.format(split=split) for split in ("validation", "test"))))
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="loading and tokenizing the pairs"):
        pairs = load_pairs(data_args.dataset_name, data_args.dataset_config_name, data_args.train_file,
                           data_args.validation_file, data_args.test_file, data_args.source_lang, data_args.target_lang,
                           data_args.source_column, data_args.target_column, data_args.validation_split_percentage,
                           seed=training_args.seed)
        if data_args.max_train_samples:
            pairs["train"] = pairs["train"].select(range(min(data_args.max_train_samples, len(pairs["train"]))))
        source = model_args.tokenizer_name or model_args.model_name_or_path
        tokenizer = AutoTokenizer.from_pretrained(source) if source else train_pair_tokenizer(pairs["train"], model_args.vocab_size)
        encoded = {split: tokenize_pairs(pairs[split], tokenizer, data_args.max_source_length, data_args.max_target_length,
                                         data_args.preprocessing_num_workers) for split in pairs}
    curve_pairs = pairs["validation"]
    if data_args.max_eval_samples is not None and len(curve_pairs) > data_args.max_eval_samples:
        curve_pairs = curve_pairs.select(range(data_args.max_eval_samples))
    curve_encoded = encoded["validation"].select(range(len(curve_pairs)))

    model = build_model(model_args, tokenizer, max(data_args.max_source_length, data_args.max_target_length))
    _set_generation(model, data_args.max_target_length, training_args.generation_num_beams or 1)
    copy_baseline = copy_source_scores(curve_pairs["source"], curve_pairs["target"])
    size_name = model_args.model_size if model_args.model_name_or_path is None else model_args.model_name_or_path
    logger.warning(
        f"{size_name}: {model.num_parameters():,} parameters ({model.config.model_type}); {len(pairs['train']):,} training "
        f"pairs, vocabulary {len(tokenizer):,}; BLEU of copying the source on the curve's {len(curve_pairs)} validation "
        f"pairs {copy_baseline['bleu']:.1f} "
        "(a model must beat it)"
    )

    trainer = BudgetSeq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=curve_encoded,
        data_collator=TranslationCollator(tokenizer, model=model, pad_to_multiple_of=8),
        processing_class=tokenizer,
        compute_metrics=TranslationMetrics(tokenizer, curve_pairs["target"]),
        curve_metrics=CURVE_METRICS,
    )
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resume_from)
    budget = trainer.budget
    if budget is not None and budget.stop_reason == "preempted":
        return record_preemption(trainer, "eval_results.json", model_size=size_name)  # the record a study checks
    evaluations = [row for row in trainer.state.log_history if "eval_bleu" in row]
    if not evaluations or evaluations[-1]["step"] != trainer.state.global_step:
        trainer.evaluate()
        evaluations = [row for row in trainer.state.log_history if "eval_bleu" in row]
    train_seconds = budget.train_seconds() if budget else time.monotonic() - started
    total_seconds = budget.total_seconds() if budget else time.monotonic() - started
    trainer.save_model()

    scored = time.monotonic()
    trainer.compute_metrics = None  # the curve's metric knows the curve's references only; score_split scores whole splits
    results = {split: score_split(trainer, tokenizer, encoded[split], pairs[split],
                                  Path(training_args.output_dir) / TRANSLATIONS_FILE.format(split=split))
               for split in ("validation", "test") if split in encoded}
    results["copy_source"] = {split: copy_source_scores(pairs[split]["source"], pairs[split]["target"])
                              for split in ("validation", "test") if split in pairs}
    last = evaluations[-1]
    summary = {
        "task": "translation",
        "model_size": size_name,
        "parameters": model.num_parameters(),
        "config": {key: getattr(model.config, key) for key in (
            "model_type", "encoder_layers", "decoder_layers", "d_model", "encoder_attention_heads", "encoder_ffn_dim",
            "vocab_size", "dropout")},
        "source_lang": data_args.source_lang,
        "target_lang": data_args.target_lang,
        "dataset": data_args.dataset_name or data_args.train_file,
        "dataset_name": data_args.dataset_name,
        "dataset_config_name": data_args.dataset_config_name,
        "train_pairs": len(pairs["train"]),
        "time_budget_s": budget.time_budget if budget else None,
        "budget_includes_eval": training_args.budget_includes_eval,
        "stop_reason": budget.stop_reason if budget else "max_steps",
        "deadline_overshoot_s": round(budget.overshoot, 3) if budget and budget.overshoot is not None else None,
        "model_saved": True,
        "train_s": round(train_seconds, 3),
        "total_s": round(total_seconds, 3),
        # decoding the curve's BLEU happens off the budget clock (unless budget_includes_eval): what it cost
        "eval_s": round(total_seconds - train_seconds, 3),
        "eval_share_of_budget": round((total_seconds - train_seconds) / budget.time_budget, 4) if budget else None,
        "steps": trainer.state.global_step,
        "tokens": trainer.state.num_input_tokens_seen,
        "curve_eval_pairs": len(curve_pairs),
        "final_eval_loss": last.get("eval_loss"),
        "final_eval_bleu": last.get("eval_bleu"),
        "final_eval_chrf": last.get("eval_chrf"),
        "final_eval_distinct": last.get("eval_distinct"),
        "copy_source_bleu": copy_baseline["bleu"],
        "world_size": training_args.world_size,
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
        "per_device_train_batch_size": training_args.per_device_train_batch_size,
        "learning_rate": training_args.learning_rate,
        "warmup_ratio": training_args.warmup_ratio,
        "label_smoothing_factor": training_args.label_smoothing_factor,
        "schedule": f"{training_args.lr_scheduler_type.value} by {training_args.schedule_by}",
        "resumed_from": resume_from,
        "hardware": hardware_summary(),
    }
    record = {
        "task": "translation",
        "model_size": size_name,
        "source_lang": data_args.source_lang,
        "target_lang": data_args.target_lang,
        "dataset": summary["dataset"],
        "dataset_config_name": data_args.dataset_config_name,
        "decoding": f"{'greedy' if (training_args.generation_num_beams or 1) == 1 else f'beam {training_args.generation_num_beams}'}, "
                    f"at most {data_args.max_target_length} tokens",
        "bleu": results.get("test", results["validation"])["bleu"],
        "bleu_split": "test" if "test" in results else "validation",
        "splits": {split: value for split, value in results.items() if split != "copy_source"},
        "copy_source": results["copy_source"],
        "steps": trainer.state.global_step,
        "train_s": summary["train_s"],
        "time_budget_s": summary["time_budget_s"],
        "scoring_s": round(time.monotonic() - scored, 3),
        "model_saved": True,
        "hardware": summary["hardware"],
    }
    if trainer.is_world_process_zero():
        folder = Path(training_args.output_dir)
        write_json(folder / "run_summary.json", summary)
        write_json(folder / "eval_results.json", record)
        plot_run(folder, label=size_name, loss_name="cross-entropy (label-smoothed in training)")
        plot_curves({size_name: folder}, folder / "bleu_vs_time.png", y="eval_bleu",
                    title=f"{size_name}: validation BLEU ({len(curve_pairs)} pairs, greedy) against wall-clock",
                    references={f"copy the source ({copy_baseline['bleu']:.1f})": copy_baseline["bleu"]})
        splits = ", ".join(f"{split} BLEU {value['bleu']:.1f} chrF {value['chrf']:.1f}" for split, value in results.items()
                           if split != "copy_source")
        logger.warning(f"Stopped: {describe_stop(budget)}; {summary['steps']} steps; {splits} (copying the source: "
                       f"{copy_baseline['bleu']:.1f}); decoding during training took {summary['eval_s']:.0f}s off the "
                       f"budget; model in {folder}")
    return summary
