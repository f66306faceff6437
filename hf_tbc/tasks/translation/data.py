"""Translation pairs: loading (Hub or local files), one shared subword vocabulary trained on them, tokenization."""

from __future__ import annotations

from typing import Optional

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.models.m2m_100.modeling_m2m_100 import shift_tokens_right
from transformers.utils import logging

from ...data.files import data_files, load_data_file
from ...data.tokenizer import train_bpe_tokenizer
from ...errors import UsageError

logger = logging.get_logger(__name__)

SPLITS = ("train", "validation", "test")
PAIR_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]


def _pair_columns(
    data: Dataset, source_column: str, target_column: str, source_lang: str, target_lang: str, where: str
) -> Dataset:
    """``data`` with exactly two string columns, ``source`` and ``target``, and no empty side."""
    columns = data.column_names
    if source_column not in columns and "translation" in columns:  # the Hub's WMT layout: {"en": ..., "fr": ...}
        languages = sorted(data[0]["translation"]) if len(data) else []
        for language in (source_lang, target_lang):
            if language not in languages:
                raise UsageError(
                    f"{where} has no {language!r} side (languages: {', '.join(languages)}): set --source_lang "
                    "and --target_lang to two of them"
                )
        data = data.map(
            lambda row: {"source": row["translation"][source_lang], "target": row["translation"][target_lang]},
            remove_columns=columns,
        )
    else:
        for name, flag in ((source_column, "--source_column"), (target_column, "--target_column")):
            if name not in columns:
                raise UsageError(f"column {name!r} is not in {where} (columns: {', '.join(columns)}): set {flag}")
        if source_column == target_column:
            raise UsageError(
                f"--source_column and --target_column are both {source_column!r}: name two different columns"
            )
        data = data.select_columns([source_column, target_column])
        data = data.rename_columns({source_column: "source", target_column: "target"})
    data = data.filter(
        lambda row: all(isinstance(row[side], str) and row[side].strip() for side in ("source", "target"))
    )
    if len(data) == 0:
        raise UsageError(f"{where} has no pair with text on both sides: check the file and the column names")
    return data


def load_pairs(
    dataset_name: Optional[str] = None,
    dataset_config_name: Optional[str] = None,
    train_file: Optional[str] = None,
    validation_file: Optional[str] = None,
    test_file: Optional[str] = None,
    source_lang: str = "en",
    target_lang: str = "fr",
    source_column: Optional[str] = None,
    target_column: Optional[str] = None,
    validation_split_percentage: float = 5.0,
    seed: int = 42,
) -> DatasetDict:
    """``train``, ``validation`` and (when the source has one) ``test`` splits with columns ``source`` and ``target``.

    From a Hub dataset (``wmt14`` with config ``fr-en``: its ``translation`` column is read by language code) or
    local TSV/CSV/JSON(L) files, whose columns are ``source_column``/``target_column`` (default: the language codes,
    e.g. ``en`` and ``fr``). Without a validation split, ``validation_split_percentage`` of train is held out.
    """
    source_column, target_column = source_column or source_lang, target_column or target_lang
    splits: dict[str, Dataset] = {}
    if dataset_name is not None:
        raw = load_dataset(dataset_name, dataset_config_name)
        if "train" not in raw:
            raise UsageError(f"dataset {dataset_name} has no 'train' split (splits: {', '.join(raw)})")
        for split in SPLITS:
            if split in raw:
                splits[split] = _pair_columns(
                    raw[split],
                    source_column,
                    target_column,
                    source_lang,
                    target_lang,
                    f"the {split} split of dataset {dataset_name}",
                )
    elif train_file is not None:
        for split, paths in (("train", train_file), ("validation", validation_file), ("test", test_file)):
            if paths:
                parts = [
                    _pair_columns(
                        load_data_file(path, split),
                        source_column,
                        target_column,
                        source_lang,
                        target_lang,
                        f"--{split}_file {path}",
                    )
                    for path in data_files(paths)
                ]
                splits[split] = concatenate_datasets(parts)
    else:
        raise UsageError(
            "no data: pass --dataset_name (e.g. wmt14 with --dataset_config_name fr-en) or --train_file "
            "(a TSV/CSV/JSON file with one column per language)"
        )
    if "validation" not in splits:
        if not 0 < validation_split_percentage < 100:
            raise UsageError(f"--validation_split_percentage {validation_split_percentage} must be in (0, 100)")
        if len(splits["train"]) < 2:
            raise UsageError("the training data holds one pair: give more pairs or a --validation_file")
        held_out = splits["train"].train_test_split(test_size=validation_split_percentage / 100, seed=seed)
        splits["train"], splits["validation"] = held_out["train"], held_out["test"]
    return DatasetDict(splits)


def pairs_from_arguments(data_args, seed: int, test: bool = True) -> DatasetDict:
    """:func:`load_pairs` as ``data_args`` (a run's :class:`TranslationDataArguments`) name the pairs, split with
    ``seed`` where there is no validation file, the test split only if ``test``; the training pairs cut to
    ``--max_train_samples``. What training, the compression grid and the latency stage all read."""
    pairs = load_pairs(
        data_args.dataset_name,
        data_args.dataset_config_name,
        data_args.train_file,
        data_args.validation_file,
        data_args.test_file if test else None,
        data_args.source_lang,
        data_args.target_lang,
        data_args.source_column,
        data_args.target_column,
        data_args.validation_split_percentage,
        seed=seed,
    )
    if data_args.max_train_samples:
        pairs["train"] = pairs["train"].select(range(min(data_args.max_train_samples, len(pairs["train"]))))
    return pairs


def train_pair_tokenizer(pairs: Dataset, vocab_size: int = 4000, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """One byte-level BPE vocabulary for both languages, trained on the source and target sides of ``pairs`` and
    cached by their content: with one vocabulary, source and target share one embedding matrix, and words spelled
    alike in both languages (names, numbers) need not be learned twice. Each text is encoded as ``tokens </s>``."""
    from tokenizers.processors import TemplateProcessing

    def texts():
        for start in range(0, len(pairs), 1000):
            batch = pairs[start : start + 1000]
            yield batch["source"] + batch["target"]

    def ending_in_eos(trained) -> PreTrainedTokenizerFast:
        eos = trained.token_to_id("</s>")
        trained.post_processor = TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=trained,
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
            model_input_names=["input_ids", "attention_mask"],
        )

    folder = train_bpe_tokenizer(
        texts,
        f"pairs-{pairs._fingerprint}-{vocab_size}-{min_frequency}",
        vocab_size,
        PAIR_SPECIAL_TOKENS,
        ending_in_eos,
        min_frequency,
    )
    return PreTrainedTokenizerFast.from_pretrained(folder)


def tokenize_pairs(
    pairs: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_source_length: int,
    max_target_length: int,
    num_proc: Optional[int] = None,
) -> Dataset:
    """``input_ids``/``attention_mask`` from the source and ``labels`` from the target, each cut to its length."""

    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["source"], max_length=max_source_length, truncation=True)
        encoded["labels"] = tokenizer(text_target=batch["target"], max_length=max_target_length, truncation=True)[
            "input_ids"
        ]
        return encoded

    return pairs.map(
        encode,
        batched=True,
        batch_size=2000,
        num_proc=num_proc,
        remove_columns=pairs.column_names,
        desc="Tokenizing pairs",
    )


class TranslationCollator(DataCollatorForSeq2Seq):
    """``DataCollatorForSeq2Seq`` that always adds ``decoder_input_ids`` (the labels shifted right behind the
    config's ``decoder_start_token_id``), also for model classes without ``prepare_decoder_input_ids_from_labels``
    (M2M100): the Trainer's label smoothing takes the labels away from the model, which then cannot build them."""

    def __call__(self, features, return_tensors=None):
        batch = super().__call__(features, return_tensors)
        if "labels" in batch and "decoder_input_ids" not in batch:
            batch["decoder_input_ids"] = shift_tokens_right(
                batch["labels"], self.tokenizer.pad_token_id, self.model.config.decoder_start_token_id
            )
        return batch


def unigram_loss(train: Dataset, validation: Dataset, vocab_size: int, label_smoothing: float = 0.0) -> float:
    """The validation loss, in the training loss's units (cross-entropy with ``label_smoothing``), of a model that
    ignores the source and the words before: the best such model predicts ``(1 - e) p + e / V`` for every target
    token, with ``p`` the training targets' token frequencies (add-one smoothed). A model that is not clearly below
    this line has learned word frequencies only; its curve usually falls steeply once it starts to use the source."""
    counts = np.bincount(np.concatenate([np.asarray(ids) for ids in train["labels"]]), minlength=vocab_size)
    frequency = (counts[:vocab_size] + 1) / (counts[:vocab_size] + 1).sum()
    predicted = np.log((1 - label_smoothing) * frequency + label_smoothing / vocab_size)
    seen = np.bincount(np.concatenate([np.asarray(ids) for ids in validation["labels"]]), minlength=vocab_size)
    seen = seen[:vocab_size]
    if seen.sum() == 0:
        raise UsageError("the validation pairs hold no target tokens: give validation pairs with translations")
    nll = -(seen * predicted).sum() / seen.sum()
    return float((1 - label_smoothing) * nll - label_smoothing * predicted.mean())
