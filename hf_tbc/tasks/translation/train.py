"""Budgeted translation training: the library behind ``recipes/run_translation.py``.

An encoder-decoder of an ``E{e}-D{d}-H{h}`` size trains from scratch (or continues a checkpoint) with
``Seq2SeqTrainer`` under a wall-clock budget, with the same clock, resume, SIGTERM handling, time-based LR,
``curve.jsonl`` and ``run_summary.json`` as pretraining. At every evaluation it decodes a fixed validation subset
greedily and records BLEU and chrF (sacreBLEU) next to the loss; decoding time is kept off the budget and recorded.
At the end it saves the decoding of ``--num_beams`` (beam search by default) in the model's generation config, scores
the full validation and test splits with it into ``eval_results.json`` and draws
``bleu_vs_time.png``. The saved folder loads with ``AutoModelForSeq2SeqLM`` (and ``pipeline("translation")`` on
transformers 4.x; 5.x removed that pipeline).
"""

from __future__ import annotations

import time
from pathlib import Path

from datasets import Dataset
from transformers import AutoTokenizer, set_seed
from transformers.utils import logging

from ...budget.curves import plot_curves, plot_run
from ...budget.runs import describe_stop, prepare_output_dir, run_summary, train_under_budget, write_json
from ...budget.trainer import BudgetSeq2SeqTrainer
from ...data.prepared import prepared, settings_key
from ...distributed import prepare_on_main_process
from .arguments import (
    CURVE_METRICS,
    TranslationDataArguments,
    TranslationModelArguments,
    TranslationTrainingArguments,
    validate,
)
from .bleu import (
    TRANSLATIONS_FILE,
    TranslationMetrics,
    copy_source_scores,
    corpus_scores,
    decode,
    looping,
    write_translations,
)
from .data import TranslationCollator, pairs_from_arguments, tokenize_pairs, train_pair_tokenizer, unigram_loss
from .model import build_model, model_config, set_generation

logger = logging.get_logger(__name__)


def score_split(
    trainer: BudgetSeq2SeqTrainer, tokenizer, encoded: Dataset, pairs: Dataset, save_to: Path, num_beams: int = 1
) -> dict:
    """BLEU, chrF and loss of the trained model on one whole split, decoded as its saved generation config says
    (``num_beams``), with a few example outputs and the decoding time; every translation goes to ``save_to`` (TSV)."""
    started = time.monotonic()
    output = trainer.predict(encoded, metric_key_prefix="test", num_beams=num_beams)
    seconds = time.monotonic() - started
    hypotheses = decode(tokenizer, output.predictions)
    scores = corpus_scores(hypotheses, pairs["target"])
    if trainer.is_world_process_zero():
        write_translations(save_to, pairs["source"], pairs["target"], hypotheses)
    examples = [
        {"source": pairs[index]["source"], "reference": pairs[index]["target"], "translation": hypotheses[index]}
        for index in range(min(3, len(pairs)))
    ]
    return {
        **scores,
        "loss": round(output.metrics.get("test_loss", float("nan")), 4),
        "examples": len(pairs),
        "distinct": round(len(set(hypotheses)) / max(len(hypotheses), 1), 4),
        "looping": looping(hypotheses),
        "decoding_s": round(seconds, 2),
        "samples": examples,
    }


def _pairs_and_tokenizer(model_args: TranslationModelArguments, data_args: TranslationDataArguments, seed: int):
    """The pairs of every split, the shared tokenizer, and every split tokenized."""
    pairs = pairs_from_arguments(data_args, seed)
    source = model_args.tokenizer_name or model_args.model_name_or_path
    if source:
        tokenizer = AutoTokenizer.from_pretrained(source)
    else:  # a trained vocabulary has no length limit: give it the run's, so `truncation=True` cuts as training did
        tokenizer = train_pair_tokenizer(pairs["train"], model_args.vocab_size)
        tokenizer.model_max_length = data_args.max_source_length
    encoded = {
        split: tokenize_pairs(
            pairs[split],
            tokenizer,
            data_args.max_source_length,
            data_args.max_target_length,
            data_args.preprocessing_num_workers,
        )
        for split in pairs
    }
    return pairs, tokenizer, encoded


def describe_decoding(num_beams: int, max_length: int, no_repeat_ngram_size: int = 0) -> str:
    """``greedy, at most 128 tokens``, ``beam 5, no 3-gram twice, at most 128 tokens``."""
    parts = ["greedy" if num_beams == 1 else f"beam {num_beams}"]
    if no_repeat_ngram_size:
        parts.append(f"no {no_repeat_ngram_size}-gram twice")
    return ", ".join([*parts, f"at most {max_length} tokens"])


def _write_outputs(folder: Path, summary: dict, record: dict, curve_pairs: int, copy_bleu: float) -> None:
    size_name = summary["model_size"]
    write_json(folder / "run_summary.json", summary)
    write_json(folder / "eval_results.json", record)
    plot_run(folder, label=size_name, loss_name="cross-entropy (label-smoothed in training)")
    plot_curves(
        {size_name: folder},
        folder / "bleu_vs_time.png",
        y="eval_bleu",
        title=f"{size_name}: validation BLEU ({curve_pairs} pairs, greedy) against wall-clock",
        references={f"copy the source ({copy_bleu:.1f})": copy_bleu},
    )


def _score_splits(trainer, tokenizer, encoded: dict, pairs: dict, folder: Path, num_beams: int) -> tuple[dict, dict]:
    """Scores of the whole validation and test splits decoded with ``num_beams`` (their translations saved beside
    the model), and the scores of copying the source."""
    trainer.compute_metrics = None  # the curve's metric knows the curve's references only; score_split scores splits
    splits = [split for split in ("validation", "test") if split in encoded]
    results = {
        split: score_split(
            trainer, tokenizer, encoded[split], pairs[split], folder / TRANSLATIONS_FILE.format(split=split), num_beams
        )
        for split in splits
    }
    copy_source = {split: copy_source_scores(pairs[split]["source"], pairs[split]["target"]) for split in splits}
    return results, copy_source


def _prepared_pairs(model_args: TranslationModelArguments, data_args: TranslationDataArguments, seed: int):
    """:func:`_pairs_and_tokenizer`, prepared once per process for the same settings."""
    key = settings_key(data_args, model_args.tokenizer_name, model_args.model_name_or_path, model_args.vocab_size)
    return prepared(key + str(seed), lambda: _pairs_and_tokenizer(model_args, data_args, seed))


def _curve(pairs, encoded, tokenizer, data_args, training_args) -> tuple:
    """The validation pairs the curve scores (the first ``max_eval_samples``), encoded, and their unigram line."""
    curve_pairs = pairs["validation"]
    if data_args.max_eval_samples is not None and len(curve_pairs) > data_args.max_eval_samples:
        curve_pairs = curve_pairs.select(range(data_args.max_eval_samples))
    curve_encoded = encoded["validation"].select(range(len(curve_pairs)))
    reference = unigram_loss(encoded["train"], curve_encoded, len(tokenizer), training_args.label_smoothing_factor)
    return curve_pairs, curve_encoded, reference


def _records(
    trainer, outcome, resume_from, arguments: tuple, pairs, results: dict, copy_source: dict, curve: dict
) -> tuple[dict, dict]:
    """``run_summary.json`` (the run) and ``eval_results.json`` (the scores of the whole splits) of a finished run;
    ``curve`` holds the size's name, the number of validation pairs the curve decodes and their copy-the-source BLEU."""
    model_args, data_args, training_args = arguments
    model, size_name = trainer.model, curve["size_name"]
    last = outcome.evaluations[-1]
    budget = trainer.budget
    summary = run_summary(
        trainer,
        outcome,
        resume_from,
        task={
            "task": "translation",
            "model_size": size_name,
            "parameters": model.num_parameters(),
            "config": {
                key: getattr(model.config, key)
                for key in (
                    "model_type",
                    "encoder_layers",
                    "decoder_layers",
                    "d_model",
                    "encoder_attention_heads",
                    "encoder_ffn_dim",
                    "vocab_size",
                    "dropout",
                )
            },
            "source_lang": data_args.source_lang,
            "target_lang": data_args.target_lang,
            "dataset": data_args.dataset_name or data_args.train_file,
            "dataset_name": data_args.dataset_name,
            "dataset_config_name": data_args.dataset_config_name,
            "train_pairs": len(pairs["train"]),
        },
        results={
            # decoding the curve's BLEU happens off the budget clock (unless budget_includes_eval): what it cost
            "eval_s": round(outcome.total_s - outcome.train_s, 3),
            "eval_share_of_budget": round((outcome.total_s - outcome.train_s) / budget.time_budget, 4)
            if budget
            else None,
            "curve_eval_pairs": curve["pairs"],
            **{f"final_eval_{name}": last.get(f"eval_{name}") for name in ("loss", "bleu", "chrf", "distinct")},
            "copy_source_bleu": curve["copy_bleu"],
            "unigram_loss": curve["unigram"],
            "label_smoothing_factor": training_args.label_smoothing_factor,
        },
    )
    record = {
        **{key: summary[key] for key in ("task", "model_size", "source_lang", "target_lang", "dataset")},
        "dataset_config_name": data_args.dataset_config_name,
        "decoding": describe_decoding(data_args.num_beams, data_args.max_target_length, data_args.no_repeat_ngram_size),
        "curve_decoding": describe_decoding(training_args.generation_num_beams or 1, data_args.max_target_length),
        "generation": {"num_beams": data_args.num_beams, "no_repeat_ngram_size": data_args.no_repeat_ngram_size},
        "bleu": results.get("test", results["validation"])["bleu"],
        "bleu_split": "test" if "test" in results else "validation",
        "splits": results,
        "copy_source": copy_source,
        **{key: summary[key] for key in ("steps", "train_s", "time_budget_s")},
        "model_saved": True,
        "hardware": summary["hardware"],
    }
    return summary, record


def train_translation(
    model_args: TranslationModelArguments,
    data_args: TranslationDataArguments,
    training_args: TranslationTrainingArguments,
) -> dict:
    """Trains a translation model under ``training_args.time_budget``; writes a loadable ``output_dir`` with
    ``run_summary.json``, ``eval_results.json``, ``curve.jsonl``, ``loss_vs_time.png`` and ``bleu_vs_time.png``."""
    validate(model_args, data_args)
    resume_from = prepare_output_dir(
        training_args,
        artifacts=("bleu_vs_time.png", *(TRANSLATIONS_FILE.format(split=split) for split in ("validation", "test"))),
    )
    set_seed(training_args.seed)
    with prepare_on_main_process(training_args, desc="loading and tokenizing the pairs"):
        pairs, tokenizer, encoded = _prepared_pairs(model_args, data_args, training_args.seed)
    curve_pairs, curve_encoded, reference = _curve(pairs, encoded, tokenizer, data_args, training_args)
    config = model_config(model_args, tokenizer, max(data_args.max_source_length, data_args.max_target_length))
    model = build_model(config, model_args.model_name_or_path)
    set_generation(model, data_args.max_target_length, training_args.generation_num_beams or 1)
    copy_baseline = copy_source_scores(curve_pairs["source"], curve_pairs["target"])
    size_name = model_args.model_size if model_args.model_name_or_path is None else model_args.model_name_or_path
    logger.warning(
        f"{size_name}: {model.num_parameters():,} parameters ({model.config.model_type}); "
        f"{len(pairs['train']):,} training pairs, vocabulary {len(tokenizer):,}; BLEU of copying the source on the "
        f"curve's {len(curve_pairs)} validation pairs {copy_baseline['bleu']:.1f} (a model must beat it); the loss of "
        f"predicting target words from their frequencies alone {reference:.3f} (the unigram line)"
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
    # a preempted run writes eval_results.json: the record a study checks
    outcome = train_under_budget(
        trainer,
        resume_from,
        "eval_results.json",
        final_metric="eval_bleu",
        model_size=size_name,
        parameters=model.num_parameters(),
        unigram_loss=round(reference, 4),
        resumed_from=resume_from,
    )
    if outcome.unfinished is not None:
        return outcome.unfinished
    # the decoding users get from generate() and the card reports: saved with the model, used for the final scores
    set_generation(model, data_args.max_target_length, data_args.num_beams, data_args.no_repeat_ngram_size)
    trainer.save_model()

    scored = time.monotonic()
    folder = Path(training_args.output_dir)
    results, copy_source = _score_splits(trainer, tokenizer, encoded, pairs, folder, data_args.num_beams)
    curve = {
        "pairs": len(curve_pairs),
        "copy_bleu": copy_baseline["bleu"],
        "size_name": size_name,
        "unigram": round(reference, 4),
    }
    summary, record = _records(
        trainer, outcome, resume_from, (model_args, data_args, training_args), pairs, results, copy_source, curve
    )
    record["scoring_s"] = round(time.monotonic() - scored, 3)
    budget = trainer.budget
    if trainer.is_world_process_zero():
        _write_outputs(folder, summary, record, len(curve_pairs), copy_baseline["bleu"])
        scores = ", ".join(
            f"{split} BLEU {value['bleu']:.1f} chrF {value['chrf']:.1f}" for split, value in results.items()
        )
        logger.warning(
            f"Stopped: {describe_stop(budget)}; {summary['steps']} steps; {scores} (copying the source: "
            f"{copy_baseline['bleu']:.1f}); decoding during training took {summary['eval_s']:.0f}s off the "
            f"budget; model in {folder}"
        )
    return summary
