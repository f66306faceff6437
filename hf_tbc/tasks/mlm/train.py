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

from ...curves import plot_run
from ...datafiles import data_files
from ...runs import describe_stop, prepare_output_dir, run_summary, train_under_budget, write_json
from ...trainer import BudgetTrainer
from .arguments import DataTrainingArguments, ModelArguments, PretrainingArguments, validate, width_scaled_learning_rate
from .data import (
    DEFAULT_CORPUS_NAME,
    MaskedLMCollator,
    load_text_datasets,
    mask_once,
    pack_texts,
    train_tokenizer,
    unigram_loss,
)
from .model import SparsePrediction, build_model, count_parameters, training_flops_per_token

logger = logging.get_logger(__name__)


def _corpus_and_tokenizer(model_args: ModelArguments, data_args: DataTrainingArguments, seed: int):
    """The tokenizer (given, the checkpoint's, or trained on the corpus) and the corpus packed into blocks."""
    texts = load_text_datasets(
        data_args.dataset_name,
        data_args.dataset_config_name,
        data_args.train_file,
        data_args.validation_file,
        data_args.text_column,
        data_args.validation_split_percentage,
        seed=seed,
    )
    if model_args.tokenizer_name or model_args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    else:
        tokenizer = train_tokenizer(texts["train"], vocab_size=model_args.vocab_size)
    blocks = {
        split: pack_texts(texts[split], tokenizer, data_args.block_size, data_args.preprocessing_num_workers)
        for split in ("train", "validation")
    }
    if data_args.max_eval_samples is not None and len(blocks["validation"]) > data_args.max_eval_samples:
        blocks["validation"] = blocks["validation"].select(range(data_args.max_eval_samples))
    return tokenizer, blocks


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
        "position_init": model_args.position_init if model_args.model_name_or_path is None else None,
        "corpus": data_args.dataset_name or data_args.train_file or DEFAULT_CORPUS_NAME,
        "dataset_name": data_args.dataset_name,
        "dataset_config_name": data_args.dataset_config_name,
        "corpus_files": data_files(data_args.train_file),
        "block_size": data_args.block_size,
        "mlm_probability": data_args.mlm_probability,
        "eval_mlm_probability": data_args.eval_mlm_probability,
    }


def pretrain(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: PretrainingArguments) -> dict:
    """Pretrains a masked LM under ``training_args.time_budget`` and writes a loadable ``output_dir``.

    Returns the run summary also written to ``output_dir/run_summary.json``.
    """
    validate(model_args, data_args)
    resume_from = prepare_output_dir(training_args)
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="loading and tokenizing the corpus"):
        tokenizer, blocks = _corpus_and_tokenizer(model_args, data_args, training_args.seed)
    reference = unigram_loss(blocks["train"], blocks["validation"], tokenizer.all_special_ids, len(tokenizer))
    blocks["validation"] = mask_once(
        blocks["validation"], tokenizer, data_args.eval_mlm_probability, training_args.seed
    )
    model = build_model(model_args, tokenizer, data_args.block_size)
    if training_args.learning_rate is None:
        training_args.learning_rate = width_scaled_learning_rate(model.config.hidden_size)
    sparse = SparsePrediction(model) if model_args.sparse_prediction else None
    flops_per_token = training_flops_per_token(
        model.config, data_args.block_size, data_args.mlm_probability if sparse is not None else 1.0
    )
    size_name = model_args.model_size if model_args.model_name_or_path is None else model_args.model_name_or_path
    logger.warning(
        f"{size_name}: {model.num_parameters():,} parameters ({count_parameters(model.config)['non_embedding']:,} "
        f"non-embedding), {flops_per_token / 1e6:.1f} MFLOPs per training token; {len(blocks['train']):,} training "
        f"blocks of {data_args.block_size} tokens; unigram loss of the validation blocks {reference:.3f} (a model must "
        "get below it)"
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
            "final_eval_loss": final,
            "unigram_loss": round(reference, 4),
            "below_unigram": round(reference - final, 4) if final is not None else None,
        },
    )
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / "run_summary.json", summary)
        plot_run(training_args.output_dir, label=size_name, unigram_loss=reference)
        logger.warning(
            f"Stopped: {describe_stop(trainer.budget)}; {summary['steps']} steps, {tokens:,} tokens, final eval loss "
            f"{final} (unigram loss {reference:.3f}); model in {training_args.output_dir}"
        )
    return summary
