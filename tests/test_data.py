import json
from pathlib import Path

import pytest
from datasets import Dataset

from hf_tbc.tasks.mlm.corpus import default_corpus
from hf_tbc.tasks.mlm.data import load_text_datasets, pack_texts, train_tokenizer


def test_default_corpus_is_real_english_built_once_and_cached(isolated_cache):
    path = default_corpus()
    assert path.is_relative_to(isolated_cache)
    lines = path.read_text().splitlines()
    assert len(lines) > 5000 and len(set(lines)) == len(lines)
    words = " ".join(lines[:200]).split()
    assert sum(word.lower() in {"the", "a", "of", "to", "is"} for word in words) / len(words) > 0.08
    modified = path.stat().st_mtime_ns
    assert default_corpus() == path and path.stat().st_mtime_ns == modified


def test_default_corpus_gets_a_held_out_validation_split():
    splits = load_text_datasets(validation_split_percentage=5)
    assert set(splits) == {"train", "validation"} and splits["train"].column_names == ["text"]
    assert 0.04 < len(splits["validation"]) / (len(splits["train"]) + len(splits["validation"])) < 0.06


@pytest.mark.parametrize("extension", [".txt", ".csv", ".tsv", ".jsonl"])
def test_local_files_in_every_format(tmp_path, english_lines, extension):
    lines = english_lines[:50]
    path = tmp_path / f"train{extension}"
    if extension == ".txt":
        path.write_text("\n".join(lines) + "\n\n")
    elif extension == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, "body": line}) + "\n" for i, line in enumerate(lines)))
    else:
        separator = "," if extension == ".csv" else "\t"
        path.write_text(
            f"label{separator}sentence\n" + "".join(f'1{separator}"{line.replace(chr(34), "")}"\n' for line in lines)
        )
    splits = load_text_datasets(train_file=str(path), text_column="body" if extension == ".jsonl" else None)
    assert len(splits["train"]) + len(splits["validation"]) == 50
    assert all(row.strip() for row in splits["train"]["text"])


def test_bad_files_and_columns_fail_with_a_fix(tmp_path):
    with pytest.raises(ValueError, match="missing.txt does not exist"):
        load_text_datasets(train_file=str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        load_text_datasets(train_file=str(empty))
    blank = tmp_path / "blank.csv"
    blank.write_text("text,label\n \t,1\n")
    with pytest.raises(ValueError, match="no rows of text"):
        load_text_datasets(train_file=str(blank))
    table = tmp_path / "table.csv"
    table.write_text("sentence,label\nhello there,1\nhow are you,0\n")
    with pytest.raises(ValueError, match="text column 'review' is not in .*columns: sentence, label.*--text_column"):
        load_text_datasets(train_file=str(table), text_column="review")


def test_tokenizer_is_trained_once_and_packing_has_no_padding(english_lines):
    texts = Dataset.from_dict({"text": english_lines})
    tokenizer = train_tokenizer(texts, vocab_size=500)
    assert len(tokenizer) == 500 and tokenizer.mask_token == "<mask>" and tokenizer.pad_token_id == 1
    assert train_tokenizer(texts, vocab_size=500).get_vocab() == tokenizer.get_vocab()
    blocks = pack_texts(texts, tokenizer, block_size=64)
    assert len(blocks) > 10
    assert all(len(ids) == 64 for ids in blocks["input_ids"])
    assert tokenizer.pad_token_id not in {token for ids in blocks["input_ids"] for token in ids}
    assert tokenizer.bos_token_id in blocks[0]["input_ids"]
    with pytest.raises(ValueError, match="shorter than one block"):
        pack_texts(Dataset.from_dict({"text": ["too short"]}), tokenizer, block_size=64)


def test_several_files_per_split_are_concatenated_by_their_text_columns(tmp_path, english_lines):
    (tmp_path / "a.tsv").write_text("sentence\tlabel\n" + "".join(f"{line}\t1\n" for line in english_lines[:30]))
    (tmp_path / "b.tsv").write_text(
        "index\tsentence\n" + "".join(f"{i}\t{line}\n" for i, line in enumerate(english_lines[30:50]))
    )
    (tmp_path / "c.txt").write_text("\n".join(english_lines[50:60]) + "\n")
    splits = load_text_datasets(
        train_file=f"{tmp_path / 'a.tsv'},{tmp_path / 'b.tsv'}", validation_file=str(tmp_path / "c.txt")
    )
    assert len(splits["train"]) == 50 and len(splits["validation"]) == 10
    assert splits["train"][30]["text"] == english_lines[30].strip()


def test_several_text_columns_mix_files_of_different_shapes(tmp_path, english_lines):
    (tmp_path / "single.tsv").write_text("sentence\tlabel\n" + "".join(f"{line}\t1\n" for line in english_lines[:10]))
    (tmp_path / "pairs.tsv").write_text(
        "premise\thypothesis\tlabel\n"
        + "".join(f"{english_lines[i]}\t{english_lines[i + 1]}\tneutral\n" for i in range(10, 20, 2))
    )
    files = f"{tmp_path / 'single.tsv'},{tmp_path / 'pairs.tsv'}"
    splits = load_text_datasets(
        train_file=files, validation_file=str(tmp_path / "pairs.tsv"), text_column="sentence, premise,hypothesis"
    )
    assert list(splits["train"]["text"]) == [line.strip() for line in english_lines[:20]]  # each side one text
    # a pair's two sides stay next to each other (premise, its hypothesis, the next premise...)
    assert list(splits["validation"]["text"]) == [line.strip() for line in english_lines[10:20]]
    with pytest.raises(ValueError, match="none of the text columns 'en,fr' is in .*single.tsv.*add one of its columns"):
        load_text_datasets(train_file=files, text_column="en,fr")


def test_unigram_loss_is_the_cross_entropy_of_training_frequencies_on_maskable_validation_tokens():
    import math

    from hf_tbc.tasks.mlm.data import unigram_loss

    train = Dataset.from_dict({"input_ids": [[0, 3, 3, 2], [0, 4, 5, 2]]})  # 0 and 2 are <s> and </s>
    validation = Dataset.from_dict({"input_ids": [[0, 3, 4, 2]]})
    # add-one counts over the maskable ids 3, 4, 5: 3, 2, 2 of 7; specials are never masked, so never scored
    expected = -(math.log(3 / 7) + math.log(2 / 7)) / 2
    assert unigram_loss(train, validation, special_ids=[0, 1, 2], vocab_size=6) == pytest.approx(expected)
    # a validation token never seen in training still gets the smoothed mass, not an infinite loss
    unseen = Dataset.from_dict({"input_ids": [[0, 5, 5, 2]]})
    assert math.isfinite(unigram_loss(train, unseen, special_ids=[0, 1, 2], vocab_size=7))


def test_validation_blocks_are_masked_once_the_same_way_for_every_evaluation(english_lines):
    import torch

    from hf_tbc.tasks.mlm.masking import MaskedLMCollator, mask_once

    tokenizer = train_tokenizer(Dataset.from_dict({"text": english_lines}), vocab_size=400)
    blocks = pack_texts(Dataset.from_dict({"text": english_lines}), tokenizer, block_size=32)
    first, again = (mask_once(blocks, tokenizer, 0.15, seed=7) for _ in range(2))
    other = mask_once(blocks, tokenizer, 0.15, seed=8)
    assert first["labels"] == again["labels"] and first["input_ids"] == again["input_ids"]
    assert first["labels"] != other["labels"]
    labels = torch.tensor(first["labels"])
    masked = labels != -100
    assert masked.sum(dim=1).tolist() == [round(0.15 * 32)] * len(blocks)  # the same count in every block
    original = torch.tensor(blocks["input_ids"])
    assert torch.equal(labels[masked], original[masked])  # labels are the original tokens at the masked positions
    special = torch.tensor(blocks["special_tokens_mask"]).bool()
    assert not (masked & special).any()  # <s> and </s> are never picked
    collator = MaskedLMCollator(tokenizer, mlm_probability=0.15)
    batch = collator([first[i] for i in range(4)])
    assert torch.equal(batch["labels"], labels[:4]) and torch.equal(
        batch["input_ids"], torch.tensor(first["input_ids"][:4])
    )
    fresh = collator(
        [
            {"input_ids": row, "special_tokens_mask": mask}
            for row, mask in zip(blocks["input_ids"][:4], blocks["special_tokens_mask"][:4])
        ]
    )
    assert fresh["labels"].shape == (4, 32)  # training blocks are masked by the collator
    assert (fresh["labels"] != -100).sum(dim=1).tolist() == [5] * 4
    changed = (fresh["input_ids"] != torch.tensor(blocks["input_ids"][:4])) & (fresh["labels"] != -100)
    assert changed.any() and not (changed & (fresh["labels"] == -100)).any()


def test_a_stream_holds_its_first_texts_out_for_validation_and_packs_the_rest_on_the_fly(tmp_path, english_lines):
    from datasets import IterableDataset

    from hf_tbc.tasks.mlm.data import tokenizer_sample
    from hf_tbc.tasks.mlm.streaming import stream_text_datasets

    path = tmp_path / "train.txt"
    path.write_text("\n".join(english_lines) + "\n")
    train, validation = stream_text_datasets(train_file=str(path), validation_characters=5_000, shuffle_buffer=50)
    held_out = validation["text"]
    assert held_out == english_lines[: len(held_out)]  # the stream's first texts, in order
    assert sum(map(len, held_out[:-1])) < 5_000 <= sum(map(len, held_out))
    assert isinstance(train, IterableDataset)
    streamed = [row["text"] for row in train]
    assert sorted(streamed) == sorted(english_lines[len(held_out) :])  # the rest, each once, shuffled
    assert streamed != english_lines[len(held_out) :]
    sample = tokenizer_sample(train, max_texts=40)
    assert len(sample) == 40 and set(sample["text"]) <= set(streamed)
    tokenizer = train_tokenizer(sample, vocab_size=400, max_texts=None)
    blocks = pack_texts(train, tokenizer, block_size=32)
    first = list(blocks.take(20))
    assert len(first) == 20 and all(len(row["input_ids"]) == len(row["special_tokens_mask"]) == 32 for row in first)
    with pytest.raises(ValueError, match="--streaming reads a --dataset_name or a --train_file"):
        stream_text_datasets()


def test_a_stream_shorter_than_its_validation_holds_out_a_share_and_trains_on_the_rest(tmp_path, english_lines, caplog):
    from hf_tbc.tasks.mlm.streaming import stream_text_datasets

    path = tmp_path / "train.txt"
    path.write_text("\n".join(english_lines) + "\n")  # ~30,000 characters, under the 2,000,000 asked for
    train, validation = stream_text_datasets(train_file=str(path), validation_split_percentage=10, shuffle_buffer=50)
    share = round(len(english_lines) * 0.10)
    assert validation["text"] == english_lines[:share]
    assert sorted(row["text"] for row in train) == sorted(english_lines[share:])
    with pytest.raises(ValueError, match="holds one text: too small to train on"):
        one = tmp_path / "one.txt"
        one.write_text("a single line of text\n")
        stream_text_datasets(train_file=str(one))


def test_each_pass_over_a_stream_is_shuffled_anew(tmp_path, english_lines):
    from hf_tbc.tasks.mlm.streaming import endless, stream_text_datasets

    path = tmp_path / "train.txt"
    path.write_text("\n".join(english_lines) + "\n")
    train, _ = stream_text_datasets(train_file=str(path), validation_characters=100, shuffle_buffer=50)
    one_pass = len([row for row in train])
    rows = [row["text"] for row in endless(train, seed=3, shuffle_buffer=50).take(3 * one_pass)]
    passes = [rows[index * one_pass : (index + 1) * one_pass] for index in range(3)]
    assert all(sorted(each) == sorted(passes[0]) for each in passes)  # every text once a pass
    assert passes[0] != passes[1] and passes[1] != passes[2]  # in a new order each time
    assert passes[0] == [row["text"] for row in train]  # the first pass is the stream's own order


def test_the_tokenizer_trains_on_a_seeded_sample_of_a_large_split(english_lines):
    from hf_tbc.tasks.mlm.data import tokenizer_sample

    texts = Dataset.from_dict({"text": english_lines})
    assert tokenizer_sample(texts, max_texts=len(english_lines)) is texts  # small enough: all of it
    sample, again = tokenizer_sample(texts, 50, seed=1), tokenizer_sample(texts, 50, seed=1)
    assert len(sample) == 50 and sample["text"] == again["text"] and set(sample["text"]) <= set(english_lines)
    assert tokenizer_sample(texts, 50, seed=2)["text"] != sample["text"]
    assert tokenizer_sample(texts, 0) is texts  # 0: every text


def test_token_counts_are_counted_once_and_cached_with_the_blocks(tmp_path, english_lines, monkeypatch):
    import numpy as np

    from hf_tbc.tasks.mlm import data

    path = tmp_path / "train.txt"
    path.write_text("\n".join(english_lines) + "\n")
    texts = data.load_text_datasets(train_file=str(path), cache=str(tmp_path / "cache"))["train"]
    tokenizer = train_tokenizer(texts, vocab_size=400)
    blocks = pack_texts(texts, tokenizer, block_size=32)
    counts = data.token_counts(blocks, len(tokenizer))
    expected = np.bincount(np.asarray(blocks["input_ids"]).ravel(), minlength=len(tokenizer))
    assert counts.tolist() == expected.tolist()
    assert list(Path(blocks.cache_files[0]["filename"]).parent.glob("token-counts-*.npy"))
    monkeypatch.setattr(np, "bincount", lambda *args, **kwargs: pytest.fail("counted again"))
    assert data.token_counts(blocks, len(tokenizer)).tolist() == expected.tolist()


def test_tokenization_uses_every_core_on_a_large_corpus_only(monkeypatch):
    import os

    from hf_tbc.tasks.mlm.data import default_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert default_workers(1_000) == 1 and default_workers(50_000) == 2 and default_workers(10**7) == 4


def test_data_is_prepared_once_per_process_for_the_same_settings():
    from hf_tbc.data.prepared import prepared, settings_key
    from hf_tbc.tasks.mlm.arguments import DataTrainingArguments

    made = []

    def make(value):
        made.append(value)
        return [value]

    first = settings_key(DataTrainingArguments(train_file="a.txt"), 8000)
    assert prepared(first, lambda: make(1)) is prepared(first, lambda: make(2)) and made == [1]
    other = settings_key(DataTrainingArguments(train_file="b.txt"), 8000)
    assert prepared(other, lambda: make(3)) == [3] and prepared(first, lambda: make(4)) == [4]  # one held at a time
    assert made == [1, 3, 4]
