"""What a saved classifier variant is: its kind, how it loads, and its weights as stored.

A variant folder is one of three kinds, told apart by its files, each loaded with its documented class:
PyTorch weights (``AutoModelForSequenceClassification``), ONNX (``hf_tbc.OnnxModelForSequenceClassification``)
or quanto (``hf_tbc.compress.QuantizedModelForSequenceClassification``). Counting parameters and zeros
reads the weights each kind stores (ONNX initializers, dequantized quanto tensors, PyTorch tensors), so
a figure never comes from the model a variant was made from. This module sits below ``compress/``
(which makes variants) and ``evaluation`` (which scores them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import torch
from optimum.quanto import QuantizedTransformersModel
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from ..errors import UsageError
from .onnx_model import OnnxModelForSequenceClassification

ENCODER_LAYER = re.compile(r"/layer\.\d+/")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".pt")
QUANTO_MAP = "quanto_qmap.json"


class QuantizedModelForSequenceClassification(QuantizedTransformersModel):
    """optimum-quanto's save/reload wrapper for sequence classifiers (quanto ships one for causal LMs only)."""

    auto_class = AutoModelForSequenceClassification


def variant_kind(folder: Union[str, Path]) -> str:
    """``"onnx"``, ``"quanto"`` or ``"pytorch"``, from the files in ``folder``."""
    folder = Path(folder)
    if any(folder.glob("*.onnx")):
        return "onnx"
    if (folder / QUANTO_MAP).exists():
        return "quanto"
    if (folder / "model.safetensors").exists() or (folder / "pytorch_model.bin").exists():
        return "pytorch"
    raise UsageError(f"{folder} holds no model weights (model.safetensors, *.onnx): is it a model folder?")


def load_variant(folder: Union[str, Path], num_threads: Optional[int] = None):
    """The model in ``folder``, loaded with the class its kind documents."""
    kind = variant_kind(folder)
    if kind == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        # ONNX Runtime's idle threads spin for a while after each run, taking the cores from whatever runs next:
        # measuring several models in one process (round-robin latency) would charge that to the next model
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return OnnxModelForSequenceClassification.from_pretrained(folder, session_options=options)
    if kind == "quanto":
        return QuantizedModelForSequenceClassification.from_pretrained(str(folder))
    return AutoModelForSequenceClassification.from_pretrained(folder).eval()


def size_on_disk(folder: Union[str, Path]) -> int:
    """Bytes of the weight files in ``folder`` (configs and tokenizer files are the same for every variant)."""
    return sum(path.stat().st_size for path in Path(folder).iterdir() if path.suffix in WEIGHT_SUFFIXES)


def prunable_weights(
    model: PreTrainedModel, include_embeddings_and_head: bool = False
) -> dict[str, torch.nn.Parameter]:
    """The weights magnitude pruning may zero: every ``nn.Linear`` inside the encoder layers (and, if asked,
    the embeddings and the task head)."""
    weights = {}
    for name, module in model.named_modules():
        in_encoder_layer = ".layer." in f".{name}." and isinstance(module, torch.nn.Linear)
        extra = include_embeddings_and_head and isinstance(module, (torch.nn.Linear, torch.nn.Embedding))
        if in_encoder_layer or extra:
            weights[f"{name}.weight"] = module.weight
    return weights


# -- weights as stored ---------------------------------------------------------------------------------
def _torch_weights(model, kind: str, include_embeddings_and_head: bool) -> Iterator[tuple[bool, int, int]]:
    """(prunable, size, zeros) of each distinct parameter; quanto weights dequantized."""
    module = getattr(model, "_wrapped", model)
    prunable = {id(weight) for weight in prunable_weights(module, include_embeddings_and_head).values()}
    seen = set()
    for parameter in module.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        values = parameter.dequantize() if kind == "quanto" and hasattr(parameter, "dequantize") else parameter
        yield id(parameter) in prunable, values.numel(), int((values == 0).sum().item())


def _zero_point_for(values: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """``zero_point`` shaped to broadcast over ``values``: a scalar, or one value per output channel."""
    if zero_point.size == 1:
        return zero_point.reshape(())
    if values.shape[-1] == zero_point.size:  # MatMul weights [in, out]: one zero point per column
        return zero_point.reshape(-1)
    return zero_point.reshape((-1,) + (1,) * (values.ndim - 1))  # one per row (e.g. a gathered embedding)


def _onnx_weights(folder: Path, include_embeddings_and_head: bool) -> Iterator[tuple[bool, int, int]]:
    """(prunable, size, zeros) of each weight initializer of the ONNX files in ``folder``.

    A quantized weight ``W_quantized`` is zero where it equals its own zero point ``W_zero_point``: what
    it dequantizes to. That holds for symmetric int8 (zero point 0, AVX-512 and ARM configurations) and for
    asymmetric uint8 (zero point 128 or another value, the AVX2 configuration) alike. Initializer names are
    lost in export, so a weight is prunable when a node inside an encoder layer consumes it (nodes are named after
    their module: ``/roberta/encoder/layer.0/attention/self/query/MatMul``).
    """
    import onnx
    from onnx import numpy_helper

    for path in sorted(folder.glob("*.onnx")):
        graph = onnx.load(str(path)).graph
        arrays = {initializer.name: numpy_helper.to_array(initializer) for initializer in graph.initializer}
        consumers: dict[str, list[str]] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.name)
        for name, values in arrays.items():
            if values.size <= 1 or name.endswith(("_scale", "_zero_point")):
                continue  # quantization parameters, not weights
            if name.endswith("_quantized"):
                zero_point = arrays.get(name.removesuffix("_quantized") + "_zero_point")
                zero = _zero_point_for(values, zero_point) if zero_point is not None else 0
            else:
                zero = 0
            in_layer = any(ENCODER_LAYER.search(node) for node in consumers.get(name, []))
            prunable = values.ndim >= 2 and (in_layer or include_embeddings_and_head)  # matrices, not biases
            yield prunable, int(values.size), int((values == zero).sum())


def _stored_weights(folder: Union[str, Path], model=None, include_embeddings_and_head: bool = False):
    folder = Path(folder)
    kind = variant_kind(folder)
    if kind == "onnx":
        return _onnx_weights(folder, include_embeddings_and_head)
    return _torch_weights(model if model is not None else load_variant(folder), kind, include_embeddings_and_head)


def count_variant_parameters(folder: Union[str, Path], model=None) -> tuple[int, int]:
    """(parameters, nonzero parameters) of the weights as stored: quantized ONNX weights count as zero where
    they equal their zero point. ``model``: the variant already loaded from ``folder``, if at hand."""
    rows = list(_stored_weights(folder, model))
    total = sum(size for _, size, _ in rows)
    return total, total - sum(zeros for _, _, zeros in rows)


def prunable_sparsity(
    folder: Union[str, Path],
    model=None,
    include_embeddings_and_head: bool = False,
    parent_weights: Optional[int] = None,
) -> float:
    """Fraction of the weights pruning targets that are zero or gone, measured on the variant's own stored
    weights (for ONNX: the encoder layers' matrices, dequantized). ``parent_weights``: how many such weights the
    dense parent had, so that weights removed by structured pruning count as pruned."""
    rows = [row for row in _stored_weights(folder, model, include_embeddings_and_head) if row[0]]
    stored = sum(size for _, size, _ in rows)
    nonzero = stored - sum(zeros for _, _, zeros in rows)
    return 1.0 - nonzero / max(parent_weights or stored, 1)
