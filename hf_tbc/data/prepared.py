"""Data prepared once per process: the advisor trains every size's probe and each cool-down branch in one process,
on the same data, and each would otherwise load the files, train the tokenizer and tokenize the corpus again (a few
seconds each, which the probing's cost bound pays)."""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, TypeVar

T = TypeVar("T")

_LAST: dict[str, object] = {}  # one entry: the data of the settings last prepared


def settings_key(*parts) -> str:
    """A key for data settings: dataclasses by their fields, anything else as JSON (``default=str``)."""
    values = [dataclasses.asdict(part) if dataclasses.is_dataclass(part) else part for part in parts]
    return json.dumps(values, sort_keys=True, default=str)


def prepared(key: str, make: Callable[[], T]) -> T:
    """``make()``'s result for ``key``, made once while the key stays the same (preparing data for other settings
    replaces it: one copy held at a time). The result is deterministic in its settings (seeded tokenizer training and
    sampling), so reusing it trains on exactly the data a fresh process would."""
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = make()
    return _LAST[key]
