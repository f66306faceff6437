"""Metrics that ship with hf-tbc, loaded through `evaluate` without a Hub download."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def load_accuracy() -> evaluate.EvaluationModule:
    """``evaluate.load("accuracy")``'s interface, from the copy in this package (works offline)."""
    return evaluate.load(str(METRICS_DIR / "accuracy"))
