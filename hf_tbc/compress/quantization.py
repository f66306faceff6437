"""Quantization backends: ONNX Runtime dynamic int8, and optimum-quanto weight-only int8/int4/int2.

Each function takes a saved PyTorch classifier folder and writes a variant folder that loads with one
documented class:

- ONNX Runtime: ``hf_tbc.OnnxModelForSequenceClassification.from_pretrained(folder)`` (or optimum-onnx's
  ``ORTModelForSequenceClassification`` where it is installed)
- quanto: ``hf_tbc.compress.QuantizedModelForSequenceClassification.from_pretrained(folder)``
  (run it under ``torch.no_grad()``, not ``torch.inference_mode()``, which quanto's modules reject).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from optimum.quanto import qint2, qint4, qint8
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ..errors import UsageError
from ..hardware import INSTRUCTION_SETS, cpu_instruction_set
from .onnx_model import ONNX_FILE, export_onnx
from .variants import QuantizedModelForSequenceClassification

QUANTO_TYPES = {8: qint8, 4: qint4, 2: qint2}


def _copy_tokenizer(source: Union[str, Path], destination: Path) -> None:
    try:
        AutoTokenizer.from_pretrained(source).save_pretrained(destination)
    except (OSError, ValueError):
        pass  # a model without a tokenizer folder: the caller's evaluation brings its own


# ONNX Runtime's dynamic-quantization settings for each instruction set, as optimum's AutoQuantizationConfig has
# them: 8-bit weights, symmetric, int8 where the CPU multiplies int8 by uint8 fast (AVX-512 VNNI, ARM64) and
# uint8 (zero point 128) for AVX2, whose integer dot products take uint8 weights.
WEIGHT_TYPES = {"avx512_vnni": "QInt8", "avx512": "QInt8", "arm64": "QInt8", "avx2": "QUInt8"}
QUANTIZED_OPERATORS = ["Conv", "MatMul", "Attention", "LSTM", "Gather", "Transpose", "EmbedLayerNormalization"]


@contextlib.contextmanager
def quiet_root_logger():
    """ONNX Runtime's quantizer calls ``logging.warning`` (advice to pre-process image models), which would also
    configure the root logger and print every later log line of the run a second time: while it runs, the root
    logger gets a handler that drops what reaches it."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    added = not root.handlers
    if added:
        root.addHandler(handler)
    try:
        yield
    finally:
        if added:
            root.removeHandler(handler)


def resolve_instruction_set(instruction_set: Optional[str] = None) -> str:
    """``instruction_set``, or this CPU's; ``UsageError`` for one ONNX Runtime's settings here do not cover."""
    instruction_set = instruction_set or cpu_instruction_set()
    if instruction_set not in INSTRUCTION_SETS:
        raise UsageError(f"instruction set {instruction_set!r} is unknown: choose one of {', '.join(INSTRUCTION_SETS)}")
    return instruction_set


def quantize_onnx_file(
    source: Union[str, Path], destination: Union[str, Path], instruction_set: str, per_channel: bool = False
) -> None:
    """ONNX Runtime's dynamic int8 of the graph ``source`` into ``destination``, with the settings of
    ``instruction_set`` (:data:`WEIGHT_TYPES`): 8-bit symmetric weights, activations quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_root_logger():
        quantize_dynamic(
            str(source),
            str(destination),
            weight_type=getattr(QuantType, WEIGHT_TYPES[instruction_set]),
            per_channel=per_channel,
            reduce_range=False,
            op_types_to_quantize=QUANTIZED_OPERATORS,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )


def onnx_int8(
    model_dir: Union[str, Path],
    output_dir: Union[str, Path],
    per_channel: bool = False,
    instruction_set: Optional[str] = None,
) -> dict:
    """Exports ``model_dir`` to ONNX with torch's exporter and applies ONNX Runtime dynamic int8 quantization.

    Weights become 8-bit (per-tensor unless ``per_channel``); activations are quantized on the fly. The
    configuration follows ``instruction_set`` (default: this CPU's): int8 weights for AVX-512 and ARM64,
    uint8 with zero point 128 for AVX2. The folder holds ``model.onnx``, ``config.json`` and the tokenizer,
    and loads with ``hf_tbc.OnnxModelForSequenceClassification`` (or optimum-onnx's
    ``ORTModelForSequenceClassification``). Returns what was done, for the variant's record.
    """
    output_dir = Path(output_dir)
    instruction_set = resolve_instruction_set(instruction_set)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as scratch:
        exported = export_onnx(model, Path(scratch) / "float.onnx")
        staging = Path(scratch) / "quantized"
        staging.mkdir()
        quantize_onnx_file(exported, staging / ONNX_FILE, instruction_set, per_channel)
        model.config.save_pretrained(staging)
        _copy_tokenizer(model_dir, staging)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), output_dir)
    return {
        "method": "onnx-int8",
        "bits": 8,
        "backend": "onnxruntime",
        "instruction_set": instruction_set,
        "per_channel": per_channel,
        "exporter": "torch.onnx (dynamo)",
    }


def quanto_weights(model_dir: Union[str, Path], output_dir: Union[str, Path], bits: int) -> dict:
    """Weight-only quanto quantization of every linear layer to ``bits`` (8, 4 or 2); activations stay float."""
    if bits not in QUANTO_TYPES:
        raise UsageError(f"quanto bits {bits} are not supported: choose one of {', '.join(map(str, QUANTO_TYPES))}")
    qtype = QUANTO_TYPES[bits]
    output_dir = Path(output_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    quantized = QuantizedModelForSequenceClassification.quantize(model, weights=qtype, exclude=["classifier*"])
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / "quantized"
        quantized.save_pretrained(staging)
        _copy_tokenizer(model_dir, staging)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), output_dir)
    return {"method": f"quanto-int{bits}", "bits": bits, "backend": "optimum-quanto"}
