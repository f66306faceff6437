"""Compression of finetuned classifiers: magnitude pruning and quantization (ONNX Runtime, quanto)."""

from .pruning import FixedMaskCallback, PruningReport, check_sparsity, count_nonzero, prune_model
from .quantization import QuantizedModelForSequenceClassification, cpu_instruction_set, onnx_int8, quanto_weights

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
