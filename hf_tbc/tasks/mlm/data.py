"""Pretraining text: loading (Hub, local files, the built-in corpus; whole or streamed), tokenizer training on a
capped sample, packing into blocks, and the unigram reference loss."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from datasets import Dataset, DatasetDict, Features, IterableDataset, concatenate_datasets, load_dataset
from transformers import PreTrainedTokenizerBase, RobertaTokenizerFast
from transformers.utils import logging

from ...data.files import data_files, load_data_file
from ...data.tokenizer import train_bpe_tokenizer
from ...errors import UsageError
from .corpus import default_corpus

logger = logging.get_logger(__name__)

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def pick_text_columns(dataset: Dataset, text_column: Optional[str], where: str) -> list[str]:
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
    columns = pick_text_columns(data, text_column, where)
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


def default_workers(rows: Optional[int] = None, rows_per_worker: int = 20_000) -> int:
    """Processes to tokenize ``rows`` texts with: every core this process may use, but no more than one per
    ``rows_per_worker`` texts (starting a worker costs more than it saves on a small corpus)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if rows is None:
        return cores
    return max(1, min(cores, rows // rows_per_worker))


# -- tokenizer -----------------------------------------------------------------------------------------
TOKENIZER_SAMPLE_TEXTS = 50_000


def tokenizer_sample(texts, max_texts: Optional[int] = TOKENIZER_SAMPLE_TEXTS, seed: int = 42) -> Dataset:
    """The texts to train the tokenizer on: all of ``texts`` up to ``max_texts`` (``0`` or ``None``: no limit), else a
    seeded random sample of ``max_texts`` of them; of a stream (shuffled already), its first ``max_texts``. A BPE
    vocabulary of 8,192 tokens settles long before a gigabyte: training it on the whole corpus only costs time and
    memory."""
    if isinstance(texts, IterableDataset):
        rows = texts.take(max_texts) if max_texts else texts
        return Dataset.from_dict({"text": [row["text"] for row in rows]})
    if not max_texts or len(texts) <= max_texts:
        return texts
    return texts.shuffle(seed=seed).select(range(max_texts)).flatten_indices()


def _content_key(texts: Dataset) -> str:
    """A key for ``texts`` that the same texts give on every run and rank: the fingerprint of a dataset read from
    files (derived from them), else a hash of the texts themselves (an in-memory dataset's fingerprint is random)."""
    if texts.cache_files:
        return texts._fingerprint
    digest = hashlib.sha256()
    for start in range(0, len(texts), 10_000):
        for text in texts[start : start + 10_000]["text"]:
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def train_tokenizer(
    texts: Dataset,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    save_to: Optional[Path] = None,
    max_texts: Optional[int] = TOKENIZER_SAMPLE_TEXTS,
    seed: int = 42,
) -> RobertaTokenizerFast:
    """A byte-level BPE tokenizer (RoBERTa's kind) trained on ``texts['text']`` (at most ``max_texts`` of them, a
    seeded sample: :func:`tokenizer_sample`), cached by content.

    The cache key is the sample's fingerprint and the vocabulary settings, so every size in a sweep
    (and every rank) uses the same tokenizer.
    """
    texts = tokenizer_sample(texts, max_texts, seed)
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
        f"{_content_key(texts)}-{vocab_size}-{min_frequency}",
        vocab_size,
        SPECIAL_TOKENS,
        roberta,
        min_frequency,
        save_to,
    )
    return RobertaTokenizerFast.from_pretrained(folder)


# -- packing -------------------------------------------------------------------------------------------
def block_packer(tokenizer: PreTrainedTokenizerBase, block_size: int):
    """A batched ``map`` function that tokenizes ``batch['text']`` and packs the token stream into blocks of exactly
    ``block_size`` tokens (``input_ids`` and ``special_tokens_mask``). Each text keeps its ``<s> ... </s>`` markers;
    the remainder shorter than a block is dropped, so no position holds padding."""

    def tokenize_and_pack(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], return_special_tokens_mask=True, verbose=False)
        packed: dict[str, list] = {}
        for key in ("input_ids", "special_tokens_mask"):
            stream = np.fromiter((token for row in encoded[key] for token in row), dtype=np.int32)
            usable = len(stream) // block_size * block_size
            packed[key] = stream[:usable].reshape(-1, block_size).tolist()
        return packed

    return tokenize_and_pack


def pack_texts(texts, tokenizer: PreTrainedTokenizerBase, block_size: int, num_proc: Optional[int] = None):
    """``texts['text']`` tokenized and packed into blocks of exactly ``block_size`` tokens (:func:`block_packer`):
    a ``Dataset`` of blocks, written to the datasets cache with ``num_proc`` processes (default:
    :func:`default_workers`); for a stream, a stream of blocks packed as training reads them."""
    if isinstance(texts, IterableDataset):
        return texts.map(block_packer(tokenizer, block_size), batched=True, batch_size=1000, remove_columns=["text"])
    blocks = texts.map(
        block_packer(tokenizer, block_size),
        batched=True,
        batch_size=2000,
        num_proc=num_proc if num_proc is not None else default_workers(len(texts)),
        remove_columns=texts.column_names,
        desc=f"Packing into blocks of {block_size}",
    )
    if len(blocks) == 0:
        raise UsageError(
            f"the text is shorter than one block of {block_size} tokens: give more text or a smaller --block_size"
        )
    return blocks


def token_counts(blocks: Dataset, vocab_size: int, batch_size: int = 100_000) -> np.ndarray:
    """How often each token id occurs in ``blocks['input_ids']``, counted with numpy from Arrow's buffers (no Python
    lists), once: saved next to the blocks' cache files, keyed by their fingerprint, and read back on every later run
    and rank."""
    saved = None
    if blocks.cache_files:
        folder = Path(blocks.cache_files[0]["filename"]).parent
        saved = folder / f"token-counts-{blocks._fingerprint}-{vocab_size}.npy"
        if saved.exists():
            try:
                return np.load(saved)
            except (OSError, ValueError):  # a save cut off: count again
                pass
    total = np.zeros(vocab_size, dtype=np.int64)
    ids = blocks.with_format("numpy", columns=["input_ids"])
    for start in range(0, len(blocks), batch_size):
        chunk = np.asarray(ids[start : start + batch_size]["input_ids"], dtype=np.int64).ravel()
        total += np.bincount(chunk, minlength=vocab_size)[:vocab_size]
    if saved is not None:
        scratch = saved.with_suffix(f".{os.getpid()}.tmp.npy")
        try:
            np.save(scratch, total)
            os.replace(scratch, saved)
        except OSError:  # a read-only cache: counted again next time
            scratch.unlink(missing_ok=True)
    return total


def unigram_loss(
    train_blocks: Dataset, validation_blocks: Dataset, special_ids: Sequence[int], vocab_size: int
) -> float:
    """The masked-LM loss (nats) of a model that knows only word frequencies: the cross-entropy, over the
    validation blocks' non-special tokens (the ones masking picks from), of the training blocks' token
    frequencies (add-one smoothed). A run whose validation loss is not below this has learned nothing else.
    The counts are :func:`token_counts`: cached with the blocks.
    """

    maskable = np.ones(vocab_size, dtype=bool)
    maskable[[index for index in special_ids if 0 <= index < vocab_size]] = False
    train = (token_counts(train_blocks, vocab_size) + 1) * maskable
    validation = token_counts(validation_blocks, vocab_size) * maskable
    if validation.sum() == 0:
        raise UsageError("the validation blocks hold no maskable tokens: give more validation text")
    log_probability = np.log(np.where(maskable, train, 1) / train.sum())
    return float(-(validation * log_probability).sum() / validation.sum())
