"""The classifier's config (the checkpoint's, with a head for the data's labels) and the model built from it."""

from __future__ import annotations

from typing import Optional

from transformers import AutoModelForSequenceClassification, PretrainedConfig

from ...errors import UsageError
from ..model_config import load_model_config, set_dropout


def model_config(model_args) -> PretrainedConfig:
    """The config the classifier is built from, from the recipe's model arguments (``model_name_or_path``,
    ``dropout``: read here, not imported): the checkpoint's, with ``dropout`` where given; read before any data, so
    that a bad checkpoint fails first. :func:`with_labels` then gives it a head for the data's labels."""
    config = load_model_config(model_args.model_name_or_path)
    if model_args.dropout is not None:
        set_dropout(config, model_args.dropout)
    return config


def is_classifier(config) -> bool:
    """Whether ``config`` is a sequence classifier's (a head already trained on some labels)."""
    return any(name.endswith("ForSequenceClassification") for name in getattr(config, "architectures", None) or [])


def with_labels(config: PretrainedConfig, label_names: list[str], checkpoint: str) -> PretrainedConfig:
    """``config`` with a head for ``label_names`` (``num_labels``, ``id2label``); a ``UsageError`` where
    ``checkpoint`` is already a classifier of another label count."""
    if is_classifier(config) and config.num_labels != len(label_names):
        raise UsageError(
            f"{checkpoint} classifies into {config.num_labels} labels but the data has "
            f"{len(label_names)} ({', '.join(label_names)}): pick the matching model or --label_column"
        )
    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: index for index, name in enumerate(label_names)}
    return config


def build_model(config: PretrainedConfig, checkpoint: Optional[str] = None):
    """The sequence classifier of ``config`` (see :func:`model_config`): the weights of ``checkpoint`` under a new
    head where there is one, else fresh (``--random_init``)."""
    if checkpoint is None:
        return AutoModelForSequenceClassification.from_config(config)
    return AutoModelForSequenceClassification.from_pretrained(checkpoint, config=config)
