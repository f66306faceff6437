"""Pretraining text read as training consumes it (datasets' streaming): the training stream, shuffled through a
buffer and read again, reshuffled, each time it ends; and the validation text held in memory."""

from __future__ import annotations

import itertools
from typing import Iterator, Optional

from datasets import Dataset, Features, IterableDataset, load_dataset
from transformers.utils import logging

from ...data.files import data_file_builder, data_files
from ...errors import UsageError
from .data import pick_text_columns

logger = logging.get_logger(__name__)

SHUFFLE_BUFFER = 10_000  # texts a stream is shuffled through


def stream_text_datasets(
    dataset_name: Optional[str] = None,
    dataset_config_name: Optional[str] = None,
    train_file: Optional[str] = None,
    validation_file: Optional[str] = None,
    text_column: Optional[str] = None,
    validation_characters: int = 2_000_000,
    validation_split_percentage: float = 5.0,
    seed: int = 42,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    cache: Optional[str] = None,
) -> tuple[IterableDataset, Dataset]:
    """The training text as a stream (one column, ``text``), read as training consumes it, shuffled through a buffer of
    ``shuffle_buffer`` texts; and the validation text, in memory: the source's validation split, else the stream's
    first texts up to ``validation_characters`` characters, which the training stream then skips. A stream that ends
    before that much is read is held out in part: its first ``validation_split_percentage`` percent of texts.

    Nothing is tokenized or written ahead: a corpus of any size starts at once. Sources as
    :func:`load_text_datasets` (a Hub dataset or local files; the built-in corpus is small enough not to stream).
    """
    if dataset_name is not None:
        train = load_dataset(dataset_name, dataset_config_name, split="train", streaming=True, cache_dir=cache)
        validation = None
        try:
            validation = load_dataset(
                dataset_name, dataset_config_name, split="validation", streaming=True, cache_dir=cache
            )
        except ValueError:  # no such split: hold some of train out
            pass
        where = f"dataset {dataset_name}"
    elif train_file is not None:
        train = _stream_files(train_file, "train", cache)
        validation = _stream_files(validation_file, "validation", cache) if validation_file else None
        where = f"file {train_file}"
    else:
        raise UsageError("--streaming reads a --dataset_name or a --train_file: give one, or leave --streaming out")
    train = _stream_text_only(train, text_column, f"the train split of {where}")
    held_out = validation is None
    source = train if held_out else _stream_text_only(validation, text_column, f"the validation split of {where}")
    texts, characters, ended = [], 0, True
    for row in source:
        texts.append(row["text"])
        characters += len(row["text"])
        if characters >= validation_characters:
            ended = False
            break
    if not texts:
        raise UsageError(f"{where} has no rows of text: check the source and --text_column")
    if held_out:
        if ended:  # the whole stream is shorter than the validation it was to give: hold out a share of it
            if len(texts) < 2:
                raise UsageError(
                    f"{where} holds one text: too small to train on and validate; give more text or a "
                    "--validation_file, or leave --streaming out"
                )
            share = min(max(round(len(texts) * validation_split_percentage / 100), 1), len(texts) - 1)
            logger.warning(
                f"{where} ends after {len(texts):,} texts ({characters:,} characters), before the "
                f"{validation_characters:,} characters of validation were read: its first "
                f"{validation_split_percentage:g}% ({share:,} texts) are held out for validation "
                "(--validation_split_percentage), the rest trains"
            )
            texts = texts[:share]
            characters = sum(len(text) for text in texts)
        train = train.skip(len(texts))
    logger.info(
        f"Streaming {where}: validation {'held out of train' if held_out else 'split'}, {len(texts):,} texts "
        f"({characters:,} characters)"
    )
    return train.shuffle(seed=seed, buffer_size=shuffle_buffer), Dataset.from_dict({"text": texts})


def _passes(stream: IterableDataset, seed: int, shuffle_buffer: int) -> Iterator[dict]:
    for epoch in itertools.count():
        # pass 0 is the stream's own order; each later one shuffled anew through a buffer of its own seed (not
        # set_epoch: on datasets 5.0 that reshuffles the sources, which a stream with held-out texts skipped refuses)
        this_pass = stream if epoch == 0 else stream.shuffle(seed=seed + epoch, buffer_size=shuffle_buffer)
        seen = False
        for row in this_pass:
            seen = True
            yield row
        if not seen:
            return


def endless(stream: IterableDataset, seed: int = 42, shuffle_buffer: int = SHUFFLE_BUFFER) -> IterableDataset:
    """``stream`` read again each time it ends, each pass in a new order (the first as ``stream`` reads, each later
    one through a shuffle buffer of ``shuffle_buffer`` texts seeded by ``seed`` and the pass number), as the Trainer
    reshuffles a dataset of known length every epoch; ``IterableDataset.repeat`` would replay one order. A stream
    with no rows ends at once."""
    return IterableDataset.from_generator(
        _passes, gen_kwargs={"stream": stream, "seed": seed, "shuffle_buffer": shuffle_buffer}, features=stream.features
    )


def _stream_files(paths: str, split: str, cache: Optional[str]) -> IterableDataset:
    files = data_files(paths)
    builders = {data_file_builder(path, split) for path in files}
    if len(builders) > 1:
        raise UsageError(f"--{split}_file mixes kinds of file ({', '.join(files)}): stream files of one kind")
    ((builder, kwargs),) = builders
    return load_dataset(
        builder, data_files={split: files}, split=split, streaming=True, cache_dir=cache, **dict(kwargs)
    )


def _stream_text_only(stream: IterableDataset, text_column: Optional[str], where: str) -> IterableDataset:
    """:func:`_text_only` for a stream: the columns are read from its first row when the source does not declare
    them."""
    if stream.column_names is None:
        first = next(iter(stream), None)
        if first is None:
            raise UsageError(f"{where} has no rows of text: check the source and --text_column")
        stream = stream.cast(Features.from_dict({name: {"dtype": "string", "_type": "Value"} for name in first}))
    columns = pick_text_columns(stream, text_column, where)
    stream = stream.map(
        lambda batch: {"text": [text for row in zip(*(batch[name] for name in columns)) for text in row]},
        batched=True,
        remove_columns=stream.column_names,
    )
    return stream.filter(lambda row: isinstance(row["text"], str) and bool(row["text"].strip()))
