"""Translation models (encoder-decoders) in ONNX, run by ONNX Runtime on the CPU with their own greedy and beam search.

Two graphs, exported with torch's own exporter (``torch.onnx.export(..., dynamo=True)``, transformers 4.x and 5.x):

- ``encoder.onnx``: ``input_ids``, ``attention_mask`` -> ``encoder_hidden_states`` and, for every decoder layer, the
  cross-attention keys and values of the source (computed once per sentence, as the cache of ``generate`` holds them);
- ``decoder.onnx``: one decoding step. The new token, the source mask and every layer's past self-attention keys and
  values (empty at the first step) plus its cross-attention keys and values -> the next token's logits and the grown
  self-attention keys and values.

:class:`OnnxModelForSeq2SeqLM` loads a folder holding both graphs, ``config.json``, ``generation_config.json`` and
the tokenizer, and its ``generate`` decodes as the saved generation config says: greedy or beam search
(:mod:`hf_tbc.compress.onnx_decoding`), with ``no_repeat_ngram_size``, ``min_length``,
``max_length``/``max_new_tokens``, ``length_penalty`` and the forced end-of-sentence token, the rules of transformers'
own ``generate``. Everything between two graph calls is a few numpy operations. Which of this and PyTorch is faster
depends on the CPU, the size and the batch: ``benchmarks/bench_translation_int8_sizes.py`` measures it.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from transformers import AutoConfig, GenerationConfig, PretrainedConfig

from ..errors import UsageError
from .onnx_decoding import beam_search, greedy_search
from .onnx_model import _name_nodes_by_module, local_folder

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
PAST_NAMES = ("key", "value", "cross_key", "cross_value")
PRESENT_NAMES = ("key", "value")
# generate() options this decoder follows; any other that is set (sampling, constraints...) is refused
SUPPORTED_OPTIONS = {
    "num_beams",
    "max_length",
    "max_new_tokens",
    "min_length",
    "no_repeat_ngram_size",
    "length_penalty",
    "early_stopping",
    "forced_eos_token_id",
    "eos_token_id",
    "pad_token_id",
    "bos_token_id",
    "decoder_start_token_id",
    "do_sample",
    "num_return_sequences",
    "use_cache",
}


# generation settings that transformers applies and this decoder does not, with the value that changes nothing: set
# to anything else (by an option or in the saved generation config), they are refused rather than ignored
UNSUPPORTED_SETTINGS = {
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "force_words_ids": None,
    "forced_bos_token_id": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "exponential_decay_length_penalty": None,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "renormalize_logits": False,
    "min_new_tokens": None,
    "max_time": None,
    "stop_strings": None,
    "penalty_alpha": None,
}


class _Encoder(torch.nn.Module):
    """The encoder, and each decoder layer's cross-attention keys and values of its output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        states = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        outputs = [states]
        for layer in self.model.get_decoder().layers:
            attention = layer.encoder_attn
            shape = (states.shape[0], states.shape[1], -1, attention.head_dim)
            outputs.append(attention.k_proj(states).view(shape).transpose(1, 2))
            outputs.append(attention.v_proj(states).view(shape).transpose(1, 2))
        return tuple(outputs)


class _DecoderStep(torch.nn.Module):
    """One decoding step over a cache rebuilt from plain tensors (``PAST_NAMES`` per layer)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = len(model.get_decoder().layers)

    def forward(self, input_ids, encoder_hidden_states, encoder_attention_mask, *past):
        from transformers.cache_utils import EncoderDecoderCache

        cache = EncoderDecoderCache([tuple(past[4 * layer : 4 * layer + 4]) for layer in range(self.layers)])
        # the class's forward, not the instance's: accelerate's mixed precision leaves a trained model's forward
        # wrapped in autocast, which would put bf16 casts into the graph
        output = type(self.model).forward(
            self.model,
            decoder_input_ids=input_ids,
            encoder_outputs=(encoder_hidden_states,),
            attention_mask=encoder_attention_mask,
            past_key_values=cache,
            use_cache=True,
        )
        grown = output.past_key_values.self_attention_cache
        present = []
        for layer in range(self.layers):
            present += [grown.layers[layer].keys, grown.layers[layer].values]
        return (output.logits[:, -1, :], *present)


def _past_names(layers: int) -> list[str]:
    return [f"past.{layer}.{name}" for layer in range(layers) for name in PAST_NAMES]


def export_onnx_seq2seq(model, folder: Union[str, Path]) -> list[Path]:
    """Writes ``model`` (an M2M100, mBART or Marian model) as ``encoder.onnx`` and ``decoder.onnx`` in ``folder``,
    with dynamic batch, source and target lengths; returns the two paths. Nodes are named after their modules."""
    import onnx

    if not hasattr(model.get_decoder(), "layers") or not all(
        hasattr(layer, "encoder_attn") for layer in model.get_decoder().layers
    ):
        raise UsageError(f"{type(model).__name__} is not an M2M100, mBART or Marian model: it cannot be exported")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    config = model.config
    layers = len(model.get_decoder().layers)
    heads = config.decoder_attention_heads
    positions = getattr(config, "max_position_embeddings", 1024)
    batch = torch.export.Dim("batch", min=1, max=4096)
    source = torch.export.Dim("source", min=2, max=max(positions, 3))
    past = torch.export.Dim("past", min=0, max=max(positions, 3))
    ids = torch.full((2, 7), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    paths = [folder / ENCODER_FILE, folder / DECODER_FILE]
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # its notices (missing torchvision, renamed axes) say nothing about the model
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = _Encoder(model)
            torch.onnx.export(
                encoder,
                (ids, mask),
                str(paths[0]),
                input_names=["input_ids", "attention_mask"],
                output_names=[
                    "encoder_hidden_states",
                    *[f"cross.{i}.{n}" for i in range(layers) for n in PRESENT_NAMES],
                ],
                dynamic_shapes=({0: batch, 1: source}, {0: batch, 1: source}),
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
            encoded = encoder(ids, mask)
            head_dim = encoded[1].shape[-1]
            example, shapes = [], []
            for layer in range(layers):
                example += [torch.randn(2, heads, 3, head_dim), torch.randn(2, heads, 3, head_dim)]
                example += [encoded[1 + 2 * layer], encoded[2 + 2 * layer]]
                shapes += [{0: batch, 2: past}, {0: batch, 2: past}, {0: batch, 2: source}, {0: batch, 2: source}]
            torch.onnx.export(
                _DecoderStep(model),
                (torch.full((2, 1), 5, dtype=torch.long), encoded[0], mask, *example),
                str(paths[1]),
                input_names=["input_ids", "encoder_hidden_states", "encoder_attention_mask", *_past_names(layers)],
                output_names=["logits", *[f"present.{i}.{n}" for i in range(layers) for n in PRESENT_NAMES]],
                dynamic_shapes=({0: batch}, {0: batch, 1: source}, {0: batch, 1: source}, tuple(shapes)),
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    for path in paths:
        graph_model = onnx.load(str(path))
        _name_nodes_by_module(graph_model.graph)
        onnx.save(graph_model, str(path))
    return paths


class OnnxModelForSeq2SeqLM:
    """A translation model in ONNX (:func:`export_onnx_seq2seq`), run by ONNX Runtime, with ``generate``.

    Example:

    ```python
    >>> from transformers import AutoTokenizer
    >>> from hf_tbc import OnnxModelForSeq2SeqLM
    >>> model = OnnxModelForSeq2SeqLM.from_pretrained("runs/compressed/dense-onnx-int8")  # doctest: +SKIP
    >>> tokenizer = AutoTokenizer.from_pretrained("runs/compressed/dense-onnx-int8")  # doctest: +SKIP
    >>> outputs = model.generate(**tokenizer(["A dog runs."], return_tensors="pt"))  # doctest: +SKIP
    >>> tokenizer.batch_decode(outputs, skip_special_tokens=True)  # doctest: +SKIP
    ```
    """

    def __init__(self, encoder, decoder, config: PretrainedConfig, generation_config: GenerationConfig):
        self.encoder = encoder
        self.decoder = decoder
        self.config = config
        self.generation_config = generation_config
        self.layers = config.decoder_layers
        inputs = {item.name for item in decoder.get_inputs()}  # the exporter drops inputs a graph does not read
        names = ["input_ids", "encoder_hidden_states", "encoder_attention_mask", *_past_names(self.layers)]
        self._feed = [(index, name) for index, name in enumerate(names) if name in inputs]
        past = next(item for item in decoder.get_inputs() if item.name == "past.0.key")
        self.heads, self.head_dim = past.shape[1], past.shape[3]

    @staticmethod
    def is_onnx(folder: Union[str, Path]) -> bool:
        return (Path(folder) / ENCODER_FILE).is_file() and (Path(folder) / DECODER_FILE).is_file()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: Union[str, Path],
        session_options=None,
        revision: Optional[str] = None,
        token: Optional[Union[str, bool]] = None,
    ) -> "OnnxModelForSeq2SeqLM":
        """Loads both graphs and the configs from a folder, or from a Hub repo (downloaded once, then cached).
        Without ``session_options``, ONNX Runtime uses as many threads as torch does."""
        import onnxruntime

        folder = local_folder(name_or_path, revision, token)
        if not cls.is_onnx(folder):
            raise UsageError(f"{folder} holds no {ENCODER_FILE} and {DECODER_FILE}: export it with export_onnx_seq2seq")
        if session_options is None:
            session_options = onnxruntime.SessionOptions()
            session_options.intra_op_num_threads = torch.get_num_threads()
        sessions = [
            onnxruntime.InferenceSession(
                str(folder / name), sess_options=session_options, providers=["CPUExecutionProvider"]
            )
            for name in (ENCODER_FILE, DECODER_FILE)
        ]
        config = AutoConfig.from_pretrained(folder)
        try:
            generation = GenerationConfig.from_pretrained(folder)
        except OSError:
            generation = GenerationConfig.from_model_config(config)
        return cls(*sessions, config, generation)

    def eval(self) -> "OnnxModelForSeq2SeqLM":
        return self

    def _options(self, generation_config: Optional[GenerationConfig], options: dict) -> GenerationConfig:
        generation = copy.deepcopy(generation_config or self.generation_config)
        unknown = sorted(name for name, value in options.items() if name not in SUPPORTED_OPTIONS and value is not None)
        if unknown:
            raise UsageError(
                f"OnnxModelForSeq2SeqLM.generate does not take {', '.join(unknown)}: it decodes greedily or by beam "
                "search (num_beams, max_length, min_length, no_repeat_ngram_size, length_penalty)"
            )
        generation.update(**options)
        applied = [
            name
            for name, neutral in UNSUPPORTED_SETTINGS.items()
            if getattr(generation, name, None) not in (None, neutral, [])
        ]
        if applied:
            raise UsageError(
                f"OnnxModelForSeq2SeqLM.generate does not apply {', '.join(applied)} (set in the generation config): "
                "it decodes greedily or by beam search; remove them from generation_config.json, or decode with the "
                "PyTorch variant"
            )
        if generation.early_stopping is None:  # transformers' default
            generation.early_stopping = False
        if generation.early_stopping not in (True, False, "never"):
            raise UsageError(f"early_stopping={generation.early_stopping!r}: pass True, False or 'never'")
        if generation.do_sample or (generation.num_return_sequences or 1) > 1:
            raise UsageError(
                "OnnxModelForSeq2SeqLM.generate decodes greedily or by beam search: no sampling, one sequence"
            )
        if options.get("max_new_tokens") is not None:
            generation.max_length = 1 + options["max_new_tokens"]
        elif generation.max_new_tokens is not None and "max_length" not in options:
            generation.max_length = 1 + generation.max_new_tokens
        return generation

    def _encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        outputs = self.encoder.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return outputs[0], outputs[1:]

    def _step(self, tokens, states, mask, past, cross) -> tuple[np.ndarray, list[np.ndarray]]:
        values = [tokens, states, mask]
        for layer in range(self.layers):  # in PAST_NAMES order
            values += [past[2 * layer], past[2 * layer + 1], cross[2 * layer], cross[2 * layer + 1]]
        logits, *present = self.decoder.run(None, {name: values[index] for index, name in self._feed})
        return logits, present

    def generate(
        self, input_ids=None, attention_mask=None, generation_config: Optional[GenerationConfig] = None, **options
    ) -> torch.Tensor:
        """Token ids of the translations of ``input_ids`` (a batch), decoder start token first, padded with the pad
        token: what ``AutoModelForSeq2SeqLM.generate`` returns for the same options."""
        generation = self._options(generation_config, options)
        ids = np.asarray(torch.as_tensor(input_ids).cpu(), dtype=np.int64)
        mask = (
            np.ones_like(ids) if attention_mask is None else np.asarray(torch.as_tensor(attention_mask).cpu(), np.int64)
        )
        eos = generation.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        start = generation.decoder_start_token_id
        start = self.config.decoder_start_token_id if start is None else start
        pad = generation.pad_token_id if generation.pad_token_id is not None else self.config.pad_token_id
        states, cross = self._encode(ids, mask)
        beams = generation.num_beams or 1
        if beams > 1:  # every beam of a sentence attends to the same source
            expand = np.repeat(np.arange(ids.shape[0]), beams)
            states, mask, cross = states[expand], mask[expand], [part[expand] for part in cross]

        def step(tokens: np.ndarray, past: list[np.ndarray]):
            return self._step(tokens, states, mask, past, cross)

        search = beam_search if beams > 1 else greedy_search
        rows = search(step, self._empty_past(states.shape[0]), ids.shape[0], generation, start, eos, pad)
        width = max(len(row) for row in rows)
        out = np.full((len(rows), width), pad, dtype=np.int64)
        for index, row in enumerate(rows):
            out[index, : len(row)] = row
        return torch.from_numpy(out)

    def _empty_past(self, rows: int) -> list[np.ndarray]:
        return [np.zeros((rows, self.heads, 0, self.head_dim), np.float32) for _ in range(2 * self.layers)]
