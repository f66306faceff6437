"""Budgeted masked-LM pretraining: the library behind ``recipes/run_mlm.py``.

The defaults form a recipe made for short budgets, each part switchable: a pre-LayerNorm RoBERTa
(``--architecture``), the MLM head computed on masked positions only (``--sparse_prediction``), no dropout
(``--dropout``), a high peak learning rate with a short warmup and a linear decay that reaches zero at the
deadline, AdamW betas (0.9, 0.98), gradient clipping at 0.5 and a position table that starts as sine waves
(``--position_init``). The saved model is a stock
``RobertaPreLayerNormForMaskedLM`` (or ``RobertaForMaskedLM``) that the Auto classes load.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, set_seed
from transformers.utils import logging

from ...budget.curves import plot_run
from ...budget.runs import describe_stop, prepare_output_dir, run_summary, train_under_budget, write_json
from ...budget.trainer import BudgetTrainer
from ...data.files import data_files
from ...data.prepared import prepared, settings_key
from ...distributed import prepare_on_main_process
from ...errors import UsageError
from ...hardware import gpu_bf16_peak
from .arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from .corpus import DEFAULT_CORPUS_NAME
from .data import load_text_datasets, pack_texts, tokenizer_sample, train_tokenizer, unigram_loss
from .masking import MaskedLMCollator, mask_once, masked_positions_per_block
from .model import (
    SparsePrediction,
    build_model,
    check_block_size,
    count_parameters,
    model_config,
    training_attention,
    training_flops_per_token,
)
from .streaming import endless, stream_text_datasets

logger = logging.get_logger(__name__)


def _corpus_and_tokenizer(model_args: ModelArguments, data_args: DataTrainingArguments, seed: int):
    """The tokenizer (given, the checkpoint's, or trained on a sample of the corpus), the corpus packed into blocks
    (the training blocks a stream with ``--streaming``) and the training blocks the unigram line is counted on (all of
    them, or with ``--streaming`` the tokenizer's sample, packed)."""
    source = dict(
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
        train_file=data_args.train_file,
        validation_file=data_args.validation_file,
        text_column=data_args.text_column,
        seed=seed,
    )
    if data_args.streaming:
        # enough validation text for max_eval_samples blocks at 8 characters a token (English BPE averages about 4)
        characters = (data_args.max_eval_samples or 2000) * data_args.block_size * 8
        train_texts, validation_texts = stream_text_datasets(
            **source,
            validation_characters=characters,
            validation_split_percentage=data_args.validation_split_percentage,
        )
    else:
        texts = load_text_datasets(**source, validation_split_percentage=data_args.validation_split_percentage)
        train_texts, validation_texts = texts["train"], texts["validation"]
    # a stream's first texts are read once: they train the tokenizer and count the unigram line
    sample = tokenizer_sample(train_texts, data_args.tokenizer_train_texts, seed) if data_args.streaming else None
    if sample is not None and len(sample) == 0:
        raise UsageError(
            "the stream holds no text past its validation: too small to train on; give more text, or leave "
            "--streaming out"
        )
    if model_args.tokenizer_name or model_args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    else:
        tokenizer = train_tokenizer(
            sample if sample is not None else train_texts,
            vocab_size=model_args.vocab_size,
            max_texts=data_args.tokenizer_train_texts,
            seed=seed,
        )
    workers = data_args.preprocessing_num_workers
    blocks = {
        # a stream starts over when it ends (reshuffled), as the Trainer does with a dataset of known length
        "train": pack_texts(
            endless(train_texts, seed) if data_args.streaming else train_texts, tokenizer, data_args.block_size, workers
        ),
        "validation": pack_texts(validation_texts, tokenizer, data_args.block_size, workers),
    }
    if data_args.max_eval_samples is not None and len(blocks["validation"]) > data_args.max_eval_samples:
        blocks["validation"] = blocks["validation"].select(range(data_args.max_eval_samples))
    counted = pack_texts(sample, tokenizer, data_args.block_size, workers) if sample is not None else blocks["train"]
    return tokenizer, blocks, counted


def _prepared_corpus(model_args: ModelArguments, data_args: DataTrainingArguments, seed: int):
    """:func:`_corpus_and_tokenizer`, prepared once per process for the same settings (a stream is read as training
    goes: never reused)."""
    if data_args.streaming:
        return _corpus_and_tokenizer(model_args, data_args, seed)
    key = settings_key(data_args, model_args.tokenizer_name, model_args.model_name_or_path, model_args.vocab_size)
    return prepared(key + str(seed), lambda: _corpus_and_tokenizer(model_args, data_args, seed))


def _model_fields(
    model,
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    size_name: str,
    sparse: bool,
    flops_per_token: int,
) -> dict:
    """What a run summary says about the model and its data."""
    return {
        "model_size": size_name,
        "parameters": model.num_parameters(),
        "non_embedding_parameters": count_parameters(model.config)["non_embedding"],
        "training_flops_per_token": flops_per_token,
        "config": {
            key: getattr(model.config, key)
            for key in (
                "model_type",
                "num_hidden_layers",
                "hidden_size",
                "num_attention_heads",
                "intermediate_size",
                "vocab_size",
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
            )
        },
        "sparse_prediction": sparse,
        "attn_implementation": model.config._attn_implementation,
        "position_init": model_args.position_init if model_args.model_name_or_path is None else None,
        "corpus": data_args.dataset_name or data_args.train_file or DEFAULT_CORPUS_NAME,
        "dataset_name": data_args.dataset_name,
        "dataset_config_name": data_args.dataset_config_name,
        "corpus_files": data_files(data_args.train_file),
        "streaming": data_args.streaming,
        "block_size": data_args.block_size,
        "mlm_probability": data_args.mlm_probability,
        "eval_mlm_probability": data_args.eval_mlm_probability,
    }


def _model_and_head(model_args, data_args, training_args, config):
    """The model of ``config`` to train (its attention kernel chosen for the device and precision), its sparse head
    (or ``None``) and its training FLOPs per token."""
    device = training_args.device.type
    attention = training_attention(config, device, training_args.bf16, model_args.attn_implementation)
    model = build_model(config, model_args.model_name_or_path, attention, model_args.position_init)
    most_masked = max(data_args.mlm_probability, data_args.eval_mlm_probability)
    sparse = (
        SparsePrediction(model, positions_per_row=masked_positions_per_block(data_args.block_size, most_masked))
        if model_args.sparse_prediction
        else None
    )
    flops_per_token = training_flops_per_token(
        model.config, data_args.block_size, data_args.mlm_probability if sparse is not None else 1.0
    )
    return model, sparse, flops_per_token


def _mfu(flops_per_s, world_size: int):
    """Model FLOPs utilisation: achieved FLOP/s over the GPUs' datasheet bf16 peak (``None`` off a known GPU)."""
    peak = gpu_bf16_peak()
    return round(flops_per_s / (peak * world_size), 4) if peak and flops_per_s else None


def pretrain(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: PretrainingArguments) -> dict:
    """Pretrains a masked LM under ``training_args.time_budget`` and writes a loadable ``output_dir``.

    Returns the run summary also written to ``output_dir/run_summary.json``.
    """
    config = model_config(model_args)  # from the flags: bad input fails before any data is read
    check_block_size(config, data_args.block_size)
    training_args = training_args.for_width(config.hidden_size)  # the default peak LR is scaled to the width
    resume_from = prepare_output_dir(training_args)
    set_seed(training_args.seed)
    with prepare_on_main_process(training_args, desc="loading and tokenizing the corpus"):
        tokenizer, blocks, counted = _prepared_corpus(model_args, data_args, training_args.seed)
        reference = unigram_loss(counted, blocks["validation"], tokenizer.all_special_ids, len(tokenizer))
    # this run's own mapping: the prepared one stays unmasked for the next run of the process
    blocks = {
        **blocks,
        "validation": mask_once(blocks["validation"], tokenizer, data_args.eval_mlm_probability, training_args.seed),
    }
    if model_args.model_name_or_path is None:  # a fresh model takes the tokenizer's vocabulary and special tokens
        config = model_config(model_args, tokenizer)
        check_block_size(config, data_args.block_size)  # its padding index may move the positions
    model, sparse, flops_per_token = _model_and_head(model_args, data_args, training_args, config)
    size_name = model_args.model_size if model_args.model_name_or_path is None else model_args.model_name_or_path
    training_blocks = "training blocks streamed" if data_args.streaming else f"{len(blocks['train']):,} training blocks"
    logger.warning(
        f"{size_name}: {model.num_parameters():,} parameters ({count_parameters(model.config)['non_embedding']:,} "
        f"non-embedding), {flops_per_token / 1e6:.1f} MFLOPs per training token; {training_blocks} of "
        f"{data_args.block_size} tokens; unigram loss of the validation blocks {reference:.3f} (a model must get below "
        "it)"
    )
    trainer = BudgetTrainer(
        model=model,
        args=training_args,
        train_dataset=blocks["train"],
        eval_dataset=blocks["validation"],
        data_collator=MaskedLMCollator(tokenizer, mlm_probability=data_args.mlm_probability),
        processing_class=tokenizer,
    )
    outcome = train_under_budget(
        trainer,
        resume_from,
        "run_summary.json",
        model_size=size_name,
        parameters=model.num_parameters(),
        unigram_loss=round(reference, 4),
        resumed_from=resume_from,
    )
    if outcome.unfinished is not None:
        return outcome.unfinished
    if sparse is not None:
        sparse.remove()
    trainer.save_model()
    final = outcome.evaluations[-1]["eval_loss"] if outcome.evaluations else None
    tokens, seconds = trainer.state.num_input_tokens_seen, outcome.train_s
    summary = run_summary(
        trainer,
        outcome,
        resume_from,
        task=_model_fields(model, model_args, data_args, size_name, sparse is not None, flops_per_token),
        results={
            "train_tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
            "achieved_flops_per_s": round(tokens * flops_per_token / seconds) if seconds > 0 else None,
            "mfu": _mfu(tokens * flops_per_token / seconds if seconds > 0 else None, training_args.world_size),
            "final_eval_loss": final,
            "unigram_loss": round(reference, 4),
            "below_unigram": round(reference - final, 4) if final is not None else None,
        },
    )
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / "run_summary.json", summary)
        plot_run(training_args.output_dir, label=size_name, unigram_loss=reference)
        speed = ""
        if summary["achieved_flops_per_s"]:
            speed = f" ({summary['train_tokens_per_s']:,.0f}/s, {summary['achieved_flops_per_s'] / 1e12:.3f} TFLOP/s"
            speed += f", MFU {summary['mfu']:.1%} of the GPU's bf16 peak)" if summary["mfu"] else ")"
        logger.warning(
            f"Stopped: {describe_stop(trainer.budget)}; {summary['steps']} steps, {tokens:,} tokens{speed}, final "
            f"eval loss {final} (unigram loss {reference:.3f}); model in {training_args.output_dir}"
        )
    return summary
