"""The statistics and task files of benchmarks/bench_pretraining_payoff.py (no finetuning runs here)."""

import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from bag_of_words import bag_of_words_predictions  # noqa: E402
from bench_pretraining_payoff import paired_interval  # noqa: E402
from tasks import labelled_test_file, task_flags  # noqa: E402


def test_paired_interval_is_zero_width_when_the_models_agree_and_brackets_a_real_gain():
    same = np.array([True, False] * 50)
    assert paired_interval(same, same) == [0.0, 0.0]
    assert paired_interval(np.ones(40, bool), np.zeros(40, bool)) == [1.0, 1.0]
    generator = np.random.default_rng(3)
    second = generator.random(2000) < 0.6
    first = second | (generator.random(2000) < 0.25)  # right wherever second is, and on about 10 % more
    low, high = paired_interval(first, second)
    gain = first.mean() - second.mean()
    assert 0 < low < gain < high and high - low < 0.04


def test_sick_is_also_scored_on_its_labelled_test_split_and_sst2_is_not(tmp_path):
    for name in ("train", "validation", "test"):
        (tmp_path / "sick-nli").mkdir(exist_ok=True)
        (tmp_path / "sick-nli" / f"{name}.tsv").write_text("premise\thypothesis\tlabel\na\tb\tneutral\n")
    assert labelled_test_file("sick", tmp_path) == tmp_path / "sick-nli" / "test.tsv"
    assert labelled_test_file("sst2", tmp_path) is None
    assert task_flags("sick", tmp_path)[-4:] == ["--text_column", "premise", "--text_pair_column", "hypothesis"]
    with pytest.raises(SystemExit, match="lacks .*sst2.*pass the folder holding sst2/ and sick-nli/"):
        task_flags("sst2", tmp_path)


def test_bag_of_words_learns_which_words_a_hypothesis_adds_to_its_premise(english_lines):
    # each sentence gives two pairs: entailment (the hypothesis keeps some of its words) and neutral (it also adds
    # a word the premise lacks). Only which words the two texts share tells them apart: the pair features see it,
    # the premise alone cannot.
    sentences = [line.split() for line in english_lines if len(line.split()) >= 8]
    added = ["banana", "violin", "horse", "purple", "ocean", "dancing"]
    assert not any(word.lower().strip(".,") in added for words in sentences for word in words)
    generator = np.random.default_rng(0)
    premises, hypotheses, labels = [], [], []
    for index, words in enumerate(sentences):
        for label in (0, 1):
            kept = [word for word in words if generator.random() < 0.6]
            if label:  # a word from a few the premises lack, as SICK's neutral hypotheses add "man", "outdoors"
                kept.insert(int(generator.integers(len(kept) + 1)), str(generator.choice(added)))
            premises.append(" ".join(words))
            hypotheses.append(" ".join(kept))
            labels.append(label)
    cut = len(sentences) * 3 // 4 * 2  # both pairs of a sentence on the same side; the last quarter is held out
    predictions = bag_of_words_predictions(
        premises[:cut], labels[:cut], premises[cut:], train_pairs=hypotheses[:cut], pairs=hypotheses[cut:]
    )
    assert (predictions == np.array(labels[cut:])).mean() > 0.8  # the premise alone scores 0.5 here by design
