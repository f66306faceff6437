"""Pretraining text: loading (Hub, local files, the built-in corpus), tokenizer training, packing into blocks."""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from datasets import Dataset, DatasetDict, Features, concatenate_datasets, load_dataset
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase, RobertaTokenizerFast
from transformers.utils import logging

from ...datafiles import cache_dir, data_files, load_data_file, write_atomically
from ...errors import UsageError
from ...tokenizer import train_bpe_tokenizer

logger = logging.get_logger(__name__)

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
DEFAULT_CORPUS_NAME = f"python{sys.version_info.major}.{sys.version_info.minor}-stdlib-docs"


# -- the built-in corpus -------------------------------------------------------------------------------
def _prose_paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of running English in a docstring or help topic, each joined into one line."""
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.strip().splitlines()]
        if not lines or any(line.startswith((">>>", "...", "$ ", "%")) for line in lines):
            continue
        line = " ".join(lines)
        letters = sum(ch.isalpha() or ch == " " for ch in line)
        if len(line) >= 80 and letters / len(line) > 0.85 and line.count(" ") >= 10:
            yield line


def _stdlib_texts(stdlib: Path) -> Iterator[str]:
    for path in sorted(stdlib.rglob("*.py")):
        parts = path.relative_to(stdlib).parts
        if any(part in ("test", "tests", "idle_test", "site-packages", "dist-packages") for part in parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node)
                if docstring:
                    yield docstring
    try:  # the language reference's help topics, shipped with CPython as plain strings
        from pydoc_data.topics import topics

        yield from (topics[name] for name in sorted(topics))
    except ImportError:
        pass


def default_corpus(path: Optional[Path] = None) -> Path:
    """The built-in corpus: English prose from the installed Python's docstrings and help topics.

    Every Python installation has it, so pretraining works with no network. Built on first use
    (a few seconds) and cached as one paragraph per line.
    """
    path = path or cache_dir() / "corpus" / f"{DEFAULT_CORPUS_NAME}.txt"
    if not path.exists():
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        seen: set[str] = set()
        paragraphs = []
        for text in _stdlib_texts(stdlib):
            for paragraph in _prose_paragraphs(text):
                if paragraph not in seen:
                    seen.add(paragraph)
                    paragraphs.append(paragraph)
        if not paragraphs:
            raise RuntimeError(f"found no docstrings under {stdlib}: pass --train_file or --dataset_name instead")
        write_atomically(path, "\n".join(paragraphs) + "\n")
        logger.info(f"Built the default corpus: {len(paragraphs):,} paragraphs in {path}")
    return path


def _pick_text_columns(dataset: Dataset, text_column: Optional[str], where: str) -> list[str]:
    columns = dataset.column_names
    if text_column is not None:
        wanted = [name.strip() for name in text_column.split(",") if name.strip()]
        present = [name for name in wanted if name in columns]
        if len(wanted) == 1 and not present:
            raise UsageError(
                f"text column {text_column!r} is not in {where} (columns: {', '.join(columns)}): set --text_column"
            )
        if not present:
            raise UsageError(
                f"none of the text columns {text_column!r} is in {where} (columns: {', '.join(columns)}): "
                "add one of its columns to --text_column"
            )
        return present
    for candidate in ("text", "sentence", "content"):
        if candidate in columns:
            return [candidate]
    string_columns = [name for name, feature in dataset.features.items() if getattr(feature, "dtype", None) == "string"]
    if len(string_columns) == 1:
        return string_columns
    raise UsageError(
        f"cannot tell which column of {where} holds the text (columns: {', '.join(columns)}): set --text_column"
    )


def _text_only(data: Dataset, text_column: Optional[str], where: str) -> Dataset:
    """One column, ``text``: the text column of ``data``, or, for ``text_column="premise,hypothesis"``, each of
    the named columns that ``data`` has, row by row (a row's texts stay next to each other in the packed stream, as
    a document's sentences do, so a pair's premise and hypothesis share a block; files with different columns mix)."""
    columns = _pick_text_columns(data, text_column, where)
    if len(columns) == 1:
        data = data.select_columns(columns)
        data = data.rename_column(columns[0], "text") if columns[0] != "text" else data
    else:
        data = data.map(
            lambda batch: {"text": [text for row in zip(*(batch[name] for name in columns)) for text in row]},
            batched=True,
            remove_columns=data.column_names,
            features=Features({"text": data.features[columns[0]]}),
            desc="Taking each row's texts in turn",
        )
    data = data.filter(lambda row: isinstance(row["text"], str) and bool(row["text"].strip()))
    if len(data) == 0:
        raise UsageError(f"{where} has no rows of text: check the file and --text_column")
    return data


def load_text_datasets(
    dataset_name: Optional[str] = None,
    dataset_config_name: Optional[str] = None,
    train_file: Optional[str] = None,
    validation_file: Optional[str] = None,
    text_column: Optional[str] = None,
    validation_split_percentage: float = 5.0,
    seed: int = 42,
    cache: Optional[str] = None,
) -> DatasetDict:
    """``train`` and ``validation`` splits with one column, ``text``, of non-empty strings.

    Sources, in order: a Hub dataset, local files (several per split, comma-separated: their text
    columns are concatenated), else the built-in corpus. A validation split is held out of train
    (``validation_split_percentage``) when the source has none.
    """
    splits: dict[str, Dataset] = {}
    if dataset_name is not None:
        raw = load_dataset(dataset_name, dataset_config_name, cache_dir=cache)
        if "train" not in raw:
            raise UsageError(f"dataset {dataset_name} has no 'train' split (splits: {', '.join(raw)})")
        for split in ("train", "validation"):
            if split in raw:
                splits[split] = _text_only(raw[split], text_column, f"the {split} split of dataset {dataset_name}")
        where = f"dataset {dataset_name}"
    elif train_file is not None:
        for split, paths in (("train", train_file), ("validation", validation_file)):
            if paths:
                parts = [
                    _text_only(load_data_file(path, split, cache), text_column, f"file {path}")
                    for path in data_files(paths)
                ]
                splits[split] = concatenate_datasets(parts)
        where = f"file {train_file}"
    else:
        if validation_file is not None:
            raise UsageError("--validation_file needs a --train_file: give both, or neither for the default corpus")
        splits["train"] = _text_only(
            load_dataset("text", data_files=str(default_corpus()), cache_dir=cache, split="train"),
            None,
            "the default corpus",
        )
        where = "the default corpus"
    if "validation" not in splits:
        if not 0 < validation_split_percentage < 100:
            raise UsageError(f"--validation_split_percentage {validation_split_percentage} must be in (0, 100)")
        if len(splits["train"]) < 2:
            raise UsageError(f"{where} has one row of text: give more text or a --validation_file")
        held_out = splits["train"].train_test_split(test_size=validation_split_percentage / 100, seed=seed)
        splits = {"train": held_out["train"], "validation": held_out["test"]}
    return DatasetDict(splits)


# -- tokenizer -----------------------------------------------------------------------------------------
def train_tokenizer(
    texts: Dataset, vocab_size: int = 8192, min_frequency: int = 2, save_to: Optional[Path] = None
) -> RobertaTokenizerFast:
    """A byte-level BPE tokenizer (RoBERTa's kind) trained on ``texts['text']``, cached by content.

    The cache key is the dataset's fingerprint and the vocabulary settings, so every size in a sweep
    (and every rank) uses the same tokenizer.
    """
    from tokenizers.processors import RobertaProcessing

    def roberta(trained) -> RobertaTokenizerFast:
        # RoBERTa's framing, <s> A </s></s> B </s>, in the tokenizer itself
        trained.post_processor = RobertaProcessing(
            ("</s>", trained.token_to_id("</s>")), ("<s>", trained.token_to_id("<s>"))
        )
        # built from the tokenizer object, which transformers 4.x and 5.x both accept (5.x ignores vocab/merges files)
        return RobertaTokenizerFast(
            tokenizer_object=trained,
            bos_token="<s>",
            eos_token="</s>",
            sep_token="</s>",
            cls_token="<s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
        )

    folder = train_bpe_tokenizer(
        lambda: (texts[start : start + 1000]["text"] for start in range(0, len(texts), 1000)),
        f"{texts._fingerprint}-{vocab_size}-{min_frequency}",
        vocab_size,
        SPECIAL_TOKENS,
        roberta,
        min_frequency,
        save_to,
    )
    return RobertaTokenizerFast.from_pretrained(folder)


# -- packing -------------------------------------------------------------------------------------------
def pack_texts(
    texts: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int, num_proc: Optional[int] = None
) -> Dataset:
    """Tokenizes ``texts['text']`` and packs the token stream into blocks of exactly ``block_size`` tokens.

    Each text keeps its ``<s> ... </s>`` markers; the remainder shorter than a block is dropped, so
    no position holds padding.
    """

    def tokenize_and_pack(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], return_special_tokens_mask=True, verbose=False)
        packed: dict[str, list] = {}
        for key in ("input_ids", "special_tokens_mask"):
            stream = [token for row in encoded[key] for token in row]
            usable = len(stream) // block_size * block_size
            packed[key] = [stream[i : i + block_size] for i in range(0, usable, block_size)]
        return packed

    blocks = texts.map(
        tokenize_and_pack,
        batched=True,
        batch_size=2000,
        num_proc=num_proc,
        remove_columns=texts.column_names,
        desc=f"Packing into blocks of {block_size}",
    )
    if len(blocks) == 0:
        raise UsageError(
            f"the text is shorter than one block of {block_size} tokens: give more text or a smaller --block_size"
        )
    return blocks


def unigram_loss(
    train_blocks: Dataset,
    validation_blocks: Dataset,
    special_ids: Sequence[int],
    vocab_size: int,
    batch_size: int = 10_000,
) -> float:
    """The masked-LM loss (nats) of a model that knows only word frequencies: the cross-entropy, over the
    validation blocks' non-special tokens (the ones masking picks from), of the training blocks' token
    frequencies (add-one smoothed). A run whose validation loss is not below this has learned nothing else.
    """

    def counts(blocks: Dataset) -> np.ndarray:
        total = np.zeros(vocab_size, dtype=np.int64)
        for start in range(0, len(blocks), batch_size):
            ids = np.asarray(blocks[start : start + batch_size]["input_ids"], dtype=np.int64).ravel()
            total += np.bincount(ids, minlength=vocab_size)[:vocab_size]
        return total

    maskable = np.ones(vocab_size, dtype=bool)
    maskable[[index for index in special_ids if 0 <= index < vocab_size]] = False
    train = (counts(train_blocks) + 1) * maskable
    validation = counts(validation_blocks) * maskable
    if validation.sum() == 0:
        raise UsageError("the validation blocks hold no maskable tokens: give more validation text")
    log_probability = np.log(np.where(maskable, train, 1) / train.sum())
    return float(-(validation * log_probability).sum() / validation.sum())


class MaskedLMCollator(DataCollatorForLanguageModeling):
    """``DataCollatorForLanguageModeling`` that masks training blocks afresh in every batch, and passes blocks that
    are already masked (they carry ``labels``: the fixed validation set of :func:`mask_once`) through unchanged."""

    def __call__(self, examples, return_tensors=None):
        if examples and "labels" in examples[0]:
            return {key: torch.tensor([example[key] for example in examples]) for key in ("input_ids", "labels")}
        return super().__call__(examples, return_tensors)


def mask_once(blocks: Dataset, tokenizer: PreTrainedTokenizerBase, mlm_probability: float, seed: int) -> Dataset:
    """The blocks masked once, as the collator masks (80 % mask token, 10 % random, 10 % kept), with a seeded
    generator: every evaluation of a run, and every run on the same data, scores the same positions, so the
    validation curve moves only when the model does."""
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
    columns = [name for name in ("input_ids", "special_tokens_mask") if name in blocks.column_names]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        batch = collator([{name: row[name] for name in columns} for row in blocks])
    return Dataset.from_dict({"input_ids": batch["input_ids"].tolist(), "labels": batch["labels"].tolist()})
