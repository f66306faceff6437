"""Compression of encoder-decoders (translation models): feed-forward pruning and int8, each leaving a model that
``generate`` (greedy or beam search, with its cache of past keys and values) runs unchanged.

Feed-forward pruning removes the least important neurons of every encoder and decoder layer (a neuron is a row of
``fc1`` and a column of ``fc2``). A stock config has one ``encoder_ffn_dim`` and one ``decoder_ffn_dim``, so every
layer of a stack keeps the same number of neurons, each layer its own most important ones (magnitude: the row's
norm over the layer's mean plus the column's over theirs, as for classifiers in :mod:`.structured`). The result is
a smaller dense M2M100, mBART or Marian model that loads with ``AutoModelForSeq2SeqLM``. Attention and layers stay.

int8 (:func:`quantize_seq2seq`):

- ``torch-int8``: PyTorch's dynamic quantization (``torch.ao.quantization.quantize_dynamic``) of every linear layer:
  int8 weights per tensor, activations quantized on the fly, oneDNN/fbgemm int8 kernels on x86 (VNNI, AMX).
- ``torchao-int8``: torchao's ``Int8DynamicActivationInt8WeightConfig`` (the maintained successor), where torchao is
  installed.

ONNX Runtime (:func:`save_onnx_seq2seq`): the model exported as an encoder graph and a one-step decoder graph
(:mod:`hf_tbc.compress.onnx_seq2seq`), run by :class:`~hf_tbc.compress.onnx_seq2seq.OnnxModelForSeq2SeqLM` with
its own greedy and beam search:

- ``onnx``: the graphs in fp32 (what ONNX Runtime alone changes);
- ``onnx-int8``: ONNX Runtime's dynamic int8 quantization of both graphs, configured for the CPU's instruction set as
  for classifiers (:data:`~hf_tbc.compress.quantization.WEIGHT_TYPES`).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationConfig, PreTrainedModel

from ..errors import UsageError
from .structured import NEURON_MULTIPLE
from .unstructured import check_sparsity

QUANTIZATION_BACKENDS = ("none", "torch-int8", "torchao-int8")  # what quantize_seq2seq applies in memory
ONNX_METHODS = ("onnx", "onnx-int8")  # saved as ONNX graphs (OnnxModelForSeq2SeqLM)
SEQ2SEQ_QUANTIZATIONS = ("none", "torch-int8", *ONNX_METHODS)  # what a compression grid saves
STACKS = {"encoder": "encoder_ffn_dim", "decoder": "decoder_ffn_dim"}


def stack_layers(model: PreTrainedModel, stack: str) -> torch.nn.ModuleList:
    """The ``encoder`` or ``decoder`` layers of an M2M100, mBART or Marian model (each with ``fc1`` and ``fc2``)."""
    part = model.get_encoder() if stack == "encoder" else model.get_decoder()
    layers = getattr(part, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not all(hasattr(layer, "fc1") for layer in layers):
        raise UsageError(
            f"{type(model).__name__} has no {stack} layers with fc1/fc2: feed-forward pruning of encoder-decoders "
            "needs an M2M100, mBART or Marian model (a run_translation.py output)"
        )
    return layers


@torch.no_grad()
def feed_forward_scores(layers) -> list[torch.Tensor]:
    """Magnitude importance of every feed-forward neuron of each layer (higher: keep)."""
    scores = []
    for layer in layers:
        into, out = layer.fc1.weight.norm(dim=1), layer.fc2.weight.norm(dim=0)
        scores.append(into / into.mean() + out / out.mean())
    return scores


def kept_neurons(width: int, sparsity: float) -> int:
    """Neurons a layer of ``width`` keeps when ``sparsity`` of them go: a multiple of 8, at least 8."""
    keep = width * (1.0 - check_sparsity(sparsity))
    return min(width, max(NEURON_MULTIPLE, int(round(keep / NEURON_MULTIPLE)) * NEURON_MULTIPLE))


@torch.no_grad()
def _shrink(layer, indices: torch.Tensor) -> None:
    indices = indices.sort().values
    up, down = layer.fc1, layer.fc2
    new_up = torch.nn.Linear(up.in_features, indices.numel(), bias=up.bias is not None, dtype=up.weight.dtype)
    new_up.weight.copy_(up.weight[indices])
    if up.bias is not None:
        new_up.bias.copy_(up.bias[indices])
    new_down = torch.nn.Linear(indices.numel(), down.out_features, bias=down.bias is not None, dtype=down.weight.dtype)
    new_down.weight.copy_(down.weight[:, indices])
    if down.bias is not None:
        new_down.bias.copy_(down.bias)
    layer.fc1, layer.fc2 = new_up.to(up.weight.device), new_down.to(down.weight.device)


@dataclass
class FeedForwardReport:
    """What feed-forward pruning removed: the widths before and after, and the linear weights of the layers."""

    target_sparsity: float
    encoder_ffn_dim: tuple[int, int]  # (before, after)
    decoder_ffn_dim: tuple[int, int]
    layer_weights_before: int
    layer_weights_after: int

    @property
    def sparsity(self) -> float:
        """Fraction of the encoder's and decoder's linear weights (attention and feed-forward) removed."""
        return 1.0 - self.layer_weights_after / max(self.layer_weights_before, 1)


def _linear_weights(module: torch.nn.Module) -> int:
    """Weights of a linear layer, fp32 or dynamic int8 (whose ``weight`` is a method); 0 for anything else."""
    if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
        return module.weight().numel()
    return module.weight.numel() if isinstance(module, torch.nn.Linear) else 0


def layer_linear_weights(model: PreTrainedModel) -> int:
    """Weights of every linear layer inside the encoder and decoder layers (attention and feed-forward), fp32 or
    int8."""
    return sum(
        _linear_weights(module)
        for stack in STACKS
        for layer in stack_layers(model, stack)
        for module in layer.modules()
    )


def prune_feed_forward(model: PreTrainedModel, sparsity: float) -> FeedForwardReport:
    """Removes ``sparsity`` of the feed-forward neurons of every encoder and decoder layer of ``model`` in place, by
    magnitude, and updates ``encoder_ffn_dim`` and ``decoder_ffn_dim`` in its config."""
    before = layer_linear_weights(model)
    widths = {}
    for stack, key in STACKS.items():
        layers = stack_layers(model, stack)
        width = getattr(model.config, key)
        keep = kept_neurons(width, sparsity)
        if keep < width:
            for layer, scores in zip(layers, feed_forward_scores(layers)):
                _shrink(layer, scores.argsort(descending=True)[:keep])
            setattr(model.config, key, keep)
        widths[stack] = (width, keep)
    return FeedForwardReport(sparsity, widths["encoder"], widths["decoder"], before, layer_linear_weights(model))


def quantize_seq2seq(model: torch.nn.Module, method: str) -> torch.nn.Module:
    """``model`` with its linear layers quantized by ``method`` (see the module's docstring; ``none`` leaves it in
    fp32); returns the model to use, which may be a new object. Run it under ``torch.no_grad()``."""
    if method == "none":
        return model
    if method == "torch-int8":
        with warnings.catch_warnings():  # its deprecation notice, at every call and load: said once, in the docs
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
            warnings.filterwarnings("ignore", message=".*(quantize_per_tensor|TypedStorage|torchao).*")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if method == "torchao-int8":
        try:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
        except ImportError:
            raise UsageError("torchao-int8 needs torchao: pip install torchao") from None
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        return model
    raise UsageError(
        f"quantization {method!r} is unknown for translation models: choose {', '.join(QUANTIZATION_BACKENDS)}"
    )


def save_onnx_seq2seq(
    model: PreTrainedModel, folder: Union[str, Path], int8: bool = True, instruction_set: Optional[str] = None
) -> dict:
    """Writes ``model`` to ``folder`` as ONNX graphs with its config and generation config (int8 unless ``int8`` is
    false, set for ``instruction_set``, default this CPU's); the folder loads with ``OnnxModelForSeq2SeqLM``.
    Returns what was done, for the variant's record. The caller saves the tokenizer beside it."""
    from .onnx_seq2seq import export_onnx_seq2seq
    from .quantization import quantize_onnx_file, resolve_instruction_set

    folder = Path(folder)
    instruction_set = resolve_instruction_set(instruction_set)
    folder.mkdir(parents=True, exist_ok=True)
    if not int8:
        export_onnx_seq2seq(model, folder)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            for path in export_onnx_seq2seq(model, scratch):
                quantize_onnx_file(path, folder / path.name, instruction_set)
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    record = {"method": "onnx-int8" if int8 else "onnx", "bits": 8 if int8 else 32, "backend": "onnxruntime"}
    return {**record, **({"instruction_set": instruction_set} if int8 else {}), "exporter": "torch.onnx (dynamo)"}


class QuantizedModelForSeq2SeqLM:
    """An int8 translation model that saves and loads like a 🤗 model: ``save_pretrained`` writes its config, its
    generation config, its int8 weights (``model_int8.pt``, a plain state dict that ``torch.load(weights_only=True)``
    reads) and ``hf_tbc_quantization.json``; ``from_pretrained`` rebuilds the stock model from its config, quantizes
    it the same way and loads the weights. ``generate`` and calls go to the quantized model (``base``), under
    ``torch.no_grad()``.

    ```python
    >>> from hf_tbc import QuantizedModelForSeq2SeqLM
    >>> # model = QuantizedModelForSeq2SeqLM.from_pretrained("runs/E3-D3-H256-compressed/dense-torch-int8")
    >>> # model.generate(**tokenizer(["A dog runs."], return_tensors="pt"))
    ```
    """

    RECORD = "hf_tbc_quantization.json"
    WEIGHTS = "model_int8.pt"
    SAVED_METHODS = ("torch-int8",)

    def __init__(self, base: torch.nn.Module, method: str):
        self.base, self.method = base.eval(), method

    @classmethod
    def quantize(cls, model: PreTrainedModel, method: str = "torch-int8") -> "QuantizedModelForSeq2SeqLM":
        if method not in cls.SAVED_METHODS:
            raise UsageError(f"{method} variants cannot be saved yet: choose {', '.join(cls.SAVED_METHODS)}")
        return cls(quantize_seq2seq(model.eval(), method), method)

    @classmethod
    def is_quantized(cls, folder: Union[str, Path]) -> bool:
        return (Path(folder) / cls.RECORD).is_file()

    def save_pretrained(self, folder: Union[str, Path]) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.base.config.save_pretrained(folder)
        self.base.generation_config.save_pretrained(folder)
        torch.save(self.base.state_dict(), folder / self.WEIGHTS)
        record = {"method": self.method, "bits": 8, "torch": torch.__version__, "weights": self.WEIGHTS}
        (folder / self.RECORD).write_text(json.dumps(record, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path]) -> "QuantizedModelForSeq2SeqLM":
        folder = Path(folder)
        if not cls.is_quantized(folder):
            raise UsageError(f"{folder} holds no {cls.RECORD}: load it with AutoModelForSeq2SeqLM")
        method = json.loads((folder / cls.RECORD).read_text())["method"]
        model = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(folder))
        quantized = quantize_seq2seq(model.eval(), method)
        quantized.load_state_dict(torch.load(folder / cls.WEIGHTS, weights_only=True))
        quantized.generation_config = GenerationConfig.from_pretrained(folder)
        return cls(quantized, method)

    @property
    def config(self):
        return self.base.config

    @property
    def generation_config(self):
        return self.base.generation_config

    def quantized_weights(self) -> int:
        """Weights held in int8 (dynamic quantized linear layers keep them outside ``parameters()``), each counted
        once: the output layer of a model with tied embeddings gets an int8 copy of the embedding matrix, which
        ``parameters()`` already counts."""
        tied = self.base.get_output_embeddings() if getattr(self.base.config, "tie_word_embeddings", False) else None
        return sum(
            _linear_weights(module)
            for module in self.base.modules()
            if isinstance(module, torch.ao.nn.quantized.dynamic.Linear) and module is not tied
        )

    def packed_biases(self) -> int:
        """The fp32 biases that dynamic quantized linear layers pack with their int8 weights (outside
        ``parameters()`` too)."""
        biases = (
            module.bias() for module in self.base.modules() if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)
        )
        return sum(bias.numel() for bias in biases if bias is not None)

    def num_parameters(self) -> int:
        """The model's weights, fp32 and int8, each counted once: as many as the fp32 model it was quantized from."""
        fp32 = sum(parameter.numel() for parameter in self.base.parameters())
        return fp32 + self.quantized_weights() + self.packed_biases()

    @torch.no_grad()
    def generate(self, *args, **kwargs):
        return self.base.generate(*args, **kwargs)

    @torch.no_grad()
    def __call__(self, *args, **kwargs):
        return self.base(*args, **kwargs)
