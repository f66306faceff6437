"""Compression of finetuned classifiers: magnitude pruning and quantization (ONNX Runtime, quanto)."""

from .quantization import QuantizedModelForSequenceClassification, cpu_instruction_set, onnx_int8, quanto_weights
from .unstructured import FixedMaskCallback, PruningReport, check_sparsity, count_nonzero, prune_model

__all__ = [
    "FixedMaskCallback",
    "PruningReport",
    "QuantizedModelForSequenceClassification",
    "check_sparsity",
    "count_nonzero",
    "cpu_instruction_set",
    "onnx_int8",
    "prune_model",
    "quanto_weights",
]
