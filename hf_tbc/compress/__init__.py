"""Compression of trained models, one module per method family: ``unstructured`` (magnitude zeros),
``structured`` (removing layers and feed-forward neurons), ``shape`` (pruning to a smaller config along every axis:
layers per stack, hidden width with whole heads, feed-forward neurons, by importance measured on data),
``distillation`` (recovery that learns from the dense parent's logits), ``schedule`` (gradual pruning during
finetuning), ``quantization`` (ONNX Runtime int8, quanto) and ``seq2seq`` (encoder-decoders: feed-forward pruning,
PyTorch int8, ONNX Runtime graphs); ``grid`` holds what each task's grid (``tasks/*/compress.py``) shares."""

from ..hardware import cpu_instruction_set
from .importance import taylor_scores
from .quantization import onnx_int8, quanto_weights
from .schedule import GradualPruningCallback, cubic_sparsity
from .structured import StructuredPruner, StructuredReport, structured_prune
from .unstructured import (
    FixedMaskCallback,
    PruningReport,
    UnstructuredPruner,
    check_sparsity,
    count_nonzero,
    prune_model,
)
from .variants import QuantizedModelForSequenceClassification

__all__ = [
    "FixedMaskCallback",
    "GradualPruningCallback",
    "PruningReport",
    "QuantizedModelForSequenceClassification",
    "StructuredPruner",
    "StructuredReport",
    "UnstructuredPruner",
    "check_sparsity",
    "count_nonzero",
    "cpu_instruction_set",
    "cubic_sparsity",
    "onnx_int8",
    "prune_model",
    "quanto_weights",
    "structured_prune",
    "taylor_scores",
]
