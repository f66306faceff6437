"""ONNX classifiers run with ONNX Runtime: export from PyTorch, and a small loader that needs no optimum-onnx.

The export uses torch's own exporter (``torch.onnx.export(..., dynamo=True)``), which works with transformers
4.x and 5.x alike; optimum-onnx's exporter pins transformers 4.57. A folder holding ``model.onnx``,
``config.json`` and the tokenizer loads with :class:`OnnxModelForSequenceClassification`, or with
``optimum.onnxruntime.ORTModelForSequenceClassification`` where optimum-onnx is installed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from transformers import AutoConfig, PretrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput

ONNX_FILE = "model.onnx"


def export_onnx(model: torch.nn.Module, path: Union[str, Path]) -> Path:
    """Writes ``model`` (a sequence classifier) as one ONNX file with dynamic batch and sequence length.

    Nodes are named after the module they compute (``/roberta/encoder/layer.0/attention/self/query/MatMul``),
    as the exporter records it, so the graph can be read, and measured, layer by layer.
    """
    import onnx

    model = model.eval()
    positions = getattr(model.config, "max_position_embeddings", 512)
    offset = (model.config.pad_token_id or 0) + 1 if model.config.model_type in ("roberta", "xlm-roberta") else 0
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=2, max=max(positions - offset, 3))
    example = torch.full((2, 8), 5, dtype=torch.long)
    path = Path(path)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs={"input_ids": example, "attention_mask": torch.ones_like(example)},
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
            dynamo=True,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    graph_model = onnx.load(str(path))
    _name_nodes_by_module(graph_model.graph)
    onnx.save(graph_model, str(path))
    return path


def _name_nodes_by_module(graph) -> None:
    """Names each node ``/module/path/function/OpType`` from the scopes the exporter recorded, then drops the
    recorded metadata (source lines and stack traces, which would outweigh a small model's int8 weights)."""
    used: set[str] = set()
    for node in graph.node:
        recorded = next((prop.value for prop in node.metadata_props if prop.key == "pkg.torch.onnx.name_scopes"), "[]")
        try:
            scopes = [scope for scope in ast.literal_eval(recorded) if scope]
        except (ValueError, SyntaxError):
            scopes = []
        module = scopes[-2] if len(scopes) > 1 else ""
        function = scopes[-1] if scopes else ""
        path = "/".join(part for part in module.replace(".layer.", ".layer#").split(".") if part).replace("#", ".")
        base = "/" + "/".join(part for part in (path, function, node.op_type) if part)
        name, count = base, 1
        while name in used:
            name, count = f"{base}_{count}", count + 1
        used.add(name)
        node.name = name
        del node.metadata_props[:]


def local_folder(
    name_or_path: Union[str, Path], revision: Optional[str] = None, token: Optional[Union[str, bool]] = None
) -> Path:
    """``name_or_path`` if it is a folder here, else the Hub repo of that name downloaded (once, then cached)."""
    folder = Path(name_or_path)
    if folder.is_dir():
        return folder
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(name_or_path), revision=revision, token=token))


class OnnxModelForSequenceClassification:
    """A sequence classifier in ONNX, run by ONNX Runtime on the CPU, called like a 🤗 model.

    Example:

    ```python
    >>> from transformers import AutoTokenizer
    >>> from hf_tbc import OnnxModelForSequenceClassification
    >>> model = OnnxModelForSequenceClassification.from_pretrained("runs/compressed/dense-onnx-int8")  # doctest: +SKIP
    >>> inputs = AutoTokenizer.from_pretrained("runs/compressed/dense-onnx-int8")("A fine film.", return_tensors="pt")
    >>> model(**inputs).logits.argmax(-1)  # doctest: +SKIP
    ```
    """

    def __init__(self, session, config: PretrainedConfig):
        self.session = session
        self.config = config
        self.input_names = [item.name for item in session.get_inputs()]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: Union[str, Path],
        session_options=None,
        file_name: str = ONNX_FILE,
        revision: Optional[str] = None,
        token: Optional[Union[str, bool]] = None,
    ):
        """Loads ``file_name`` and ``config.json`` from a folder, or from a Hub repo (downloaded once, then cached)."""
        import onnxruntime

        folder = local_folder(name_or_path, revision, token)
        session = onnxruntime.InferenceSession(
            str(folder / file_name), sess_options=session_options, providers=["CPUExecutionProvider"]
        )
        return cls(session, AutoConfig.from_pretrained(folder))

    def __call__(self, input_ids=None, attention_mask=None, **inputs) -> SequenceClassifierOutput:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, **inputs}
        if given.get("attention_mask") is None and "attention_mask" in self.input_names:
            given["attention_mask"] = torch.ones_like(torch.as_tensor(input_ids))
        feed = {name: np.asarray(torch.as_tensor(given[name]).cpu(), dtype=np.int64) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))

    forward = __call__
