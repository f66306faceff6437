"""Model configs: loading a finished run's or a Hub model's, and the edits recipes make to them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..budget.runs import check_finished_run
from ..errors import UsageError


def load_model_config(model_name_or_path: str, flag: str = "--model_name_or_path"):
    """The config of a finished local run or a Hub model; one clear ``ValueError`` when there is none."""
    from transformers import AutoConfig

    if Path(model_name_or_path).is_dir():
        check_finished_run(model_name_or_path)
    try:
        return AutoConfig.from_pretrained(model_name_or_path)
    except OSError:
        where = "a folder without config.json" if Path(model_name_or_path).is_dir() else "no such folder"
        raise UsageError(
            f"{flag} {model_name_or_path}: {where}, and no Hub model of that name could be loaded: pass a "
            "folder written by recipes/run_mlm.py or run_classification.py, or a Hub model id"
        ) from None


def apply_config_overrides(config, config_overrides: Optional[str]) -> None:
    """Applies ``--config_overrides`` (``"key=value,key=value"``) to ``config``; one clear error when malformed."""
    if not config_overrides:
        return
    try:
        config.update_from_string(config_overrides)
    except ValueError as error:
        raise UsageError(
            f"--config_overrides {config_overrides!r} is invalid ({error}): write key=value pairs "
            "separated by commas, e.g. 'hidden_dropout_prob=0.0,num_attention_heads=4'"
        ) from None


def check_dropout(dropout: float) -> None:
    """``UsageError`` unless ``dropout`` is a probability below 1."""
    if not 0 <= dropout < 1:
        raise UsageError(f"--dropout {dropout} must be in [0, 1)")


def set_dropout(config, dropout: float) -> None:
    """Sets a RoBERTa config's hidden and attention dropout (what ``--dropout`` means in every recipe)."""
    check_dropout(dropout)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
