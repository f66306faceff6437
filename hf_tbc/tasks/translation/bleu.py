"""Translation quality: corpus BLEU and chrF with sacreBLEU (the package itself: no download), and the
copy-the-source baseline that a model must beat to show it translates at all."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from transformers import EvalPrediction, PreTrainedTokenizerBase


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU (sacreBLEU's default 13a tokenization) and chrF of ``hypotheses`` against one reference each."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    hypotheses, references = list(hypotheses), [list(references)]
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, references).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, references).score, 2),
    }


def paired_bleu_interval(
    first: Sequence[str], second: Sequence[str], references: Sequence[str], samples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """BLEU of ``first`` minus BLEU of ``second`` on the same ``references``, and its 95 % paired-bootstrap interval
    (sentences resampled together, Koehn 2004). Each sentence's n-gram counts are taken once (sacreBLEU's own
    statistics, as its paired significance test does), so a resample is a sum, not a new corpus BLEU."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    statistics = [
        np.array(metric._extract_corpus_statistics(list(system), [list(references)]), dtype=np.int64)
        for system in (first, second)
    ]

    def bleu(counts: np.ndarray) -> float:
        return metric._compute_score_from_stats(counts.tolist()).score

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(references), size=(samples, len(references)))
    differences = sorted(
        bleu(statistics[0][picked].sum(axis=0)) - bleu(statistics[1][picked].sum(axis=0)) for picked in picks
    )
    observed = bleu(statistics[0].sum(axis=0)) - bleu(statistics[1].sum(axis=0))
    return (
        round(observed, 2),
        round(differences[int(0.025 * samples)], 2),
        round(differences[int(0.975 * samples) - 1], 2),
    )


LOOP = re.compile(r"(.{2,}?)\1{3,}")  # a piece of two or more characters written four or more times in a row


def looping(texts: Sequence[str]) -> int:
    """How many of ``texts`` repeat a piece of two or more characters four or more times in a row ("tetetete"): the
    way a greedy decoder of a small model degenerates."""
    return sum(1 for text in texts if LOOP.search(text))


def copy_source_scores(sources: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """The scores of returning each source sentence unchanged: names, numbers and cognates score a little."""
    return corpus_scores(sources, references)


def _padded(tokenizer: PreTrainedTokenizerBase, token_ids) -> np.ndarray:
    token_ids = np.asarray(token_ids)
    return np.where(token_ids < 0, tokenizer.pad_token_id, token_ids)  # -100 pads between evaluation batches


def decode(tokenizer: PreTrainedTokenizerBase, token_ids) -> list[str]:
    """Texts of generated ids (rows padded with the pad token or -100)."""
    return [text.strip() for text in tokenizer.batch_decode(_padded(tokenizer, token_ids), skip_special_tokens=True)]


class TranslationMetrics:
    """``compute_metrics`` for a ``Seq2SeqTrainer`` with ``predict_with_generate``: BLEU and chrF of the generated
    translations against ``references``, the raw target texts of the evaluation set in its order (scoring raw text,
    not decoded labels, keeps truncated or re-tokenized references out of the score). Also ``gen_len``, the mean
    length in tokens, and ``distinct``, the share of different outputs: a decoder that ignores its source writes
    the same sentence for many of them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, references: Sequence[str]):
        self.tokenizer = tokenizer
        self.references = list(references)

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        generated = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        hypotheses = decode(self.tokenizer, generated)
        scores = corpus_scores(hypotheses, self.references[: len(hypotheses)])
        lengths = np.isin(_padded(self.tokenizer, generated), self.tokenizer.all_special_ids, invert=True).sum(axis=1)
        return {
            **scores,
            "gen_len": round(float(np.mean(lengths)), 2) if len(lengths) else 0.0,
            "distinct": round(len(set(hypotheses)) / max(len(hypotheses), 1), 4),
        }


TRANSLATIONS_FILE = "translations_{split}.tsv"  # source, reference and greedy translation of every pair of a split


def write_translations(
    path: Union[str, Path], sources: Sequence[str], references: Sequence[str], translations: Sequence[str]
) -> None:
    """One row per pair, columns ``source``, ``reference``, ``translation``: the output behind a BLEU score, for
    reading and for paired significance tests between runs."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["source", "reference", "translation"])
        writer.writerows(zip(sources, references, translations))


def read_translations(path: Union[str, Path]) -> list[dict[str, str]]:
    """The rows :func:`write_translations` wrote."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
