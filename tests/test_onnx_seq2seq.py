"""hf_tbc.compress.onnx_seq2seq: translation models exported as an encoder graph and a one-step decoder graph,
decoded by OnnxModelForSeq2SeqLM's own greedy and beam search exactly as transformers' generate decodes the PyTorch
model."""

import copy
import shutil

import numpy as np
import pytest
import torch

from hf_tbc import OnnxModelForSeq2SeqLM
from hf_tbc.compress.onnx_decoding import ban_repeated_ngrams
from hf_tbc.compress.seq2seq import save_onnx_seq2seq
from hf_tbc.errors import UsageError
from tests.test_compress_translation import tiny_model

# min_length keeps a fresh model (which ends at once) writing; each line exercises one rule of generate
DECODINGS = [
    {"num_beams": 1, "min_length": 6, "max_length": 14},
    {"num_beams": 4, "min_length": 4, "max_length": 14},
    {"num_beams": 5, "min_length": 3, "max_length": 16, "no_repeat_ngram_size": 2},
    {"num_beams": 1, "min_length": 10, "max_length": 20, "no_repeat_ngram_size": 3},
    {"num_beams": 3, "max_length": 10, "forced_eos_token_id": 2, "length_penalty": 0.6},
    {"num_beams": 4, "min_length": 4, "max_length": 14, "early_stopping": True, "length_penalty": 1.5},
    {"num_beams": 3, "min_length": 3, "max_length": 24, "early_stopping": "never", "length_penalty": 2.0},
    {"num_beams": 3, "min_length": 3, "max_length": 24, "early_stopping": "never", "length_penalty": -0.5},
]


def _batch():
    torch.manual_seed(1)
    ids = torch.randint(3, 50, (4, 9))
    mask = torch.ones_like(ids)
    mask[2, 5:], mask[3, 7:] = 0, 0  # padded sources: the cross-attention mask matters
    return ids, mask


@pytest.mark.parametrize("architecture", ["m2m100", "mbart", "marian"])
def test_onnx_fp32_generates_the_same_tokens_as_transformers(tmp_path, architecture):
    model = tiny_model(architecture, vocab_size=50)
    with torch.no_grad():  # a fresh model that ends sentences often, so that when beam search stops matters
        model.get_output_embeddings().weight[model.config.eos_token_id] *= 3
    save_onnx_seq2seq(model, tmp_path / "onnx", int8=False)
    onnx = OnnxModelForSeq2SeqLM.from_pretrained(tmp_path / "onnx")
    ids, mask = _batch()
    for options in DECODINGS:
        with torch.no_grad():
            expected = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **options)
        got = onnx.generate(input_ids=ids, attention_mask=mask, **options)
        assert got.shape == expected.shape and torch.equal(got, expected), options


def test_saved_generation_config_is_how_it_decodes_and_sampling_is_refused(tmp_path):
    model = tiny_model(vocab_size=50)
    model.generation_config.update(num_beams=3, no_repeat_ngram_size=2, min_length=5, max_length=12)
    save_onnx_seq2seq(model, tmp_path / "onnx", int8=False)
    onnx = OnnxModelForSeq2SeqLM.from_pretrained(tmp_path / "onnx")
    ids, mask = _batch()
    with torch.no_grad():
        expected = model.generate(input_ids=ids, attention_mask=mask)
    assert torch.equal(onnx.generate(input_ids=ids, attention_mask=mask), expected)
    for options in ({"do_sample": True}, {"repetition_penalty": 1.2}):
        with pytest.raises(UsageError, match="greedily or by beam search"):
            onnx.generate(input_ids=ids, **options)
    saved = copy.deepcopy(onnx.generation_config)
    for setting in ({"repetition_penalty": 1.3}, {"suppress_tokens": [7]}, {"forced_bos_token_id": 4}):
        onnx.generation_config.update(**setting)  # as a saved generation_config.json may hold
        with pytest.raises(UsageError, match=f"does not apply {next(iter(setting))} \\(set in the generation config"):
            onnx.generate(input_ids=ids)
        onnx.generation_config = copy.deepcopy(saved)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model and its fp32 graphs, exported once for every instruction set's int8 below."""
    folder = tmp_path_factory.mktemp("onnx") / "fp32"
    model = tiny_model(vocab_size=300)
    record = save_onnx_seq2seq(model, folder, int8=False)
    assert record["method"] == "onnx" and record["bits"] == 32
    return model, folder


@pytest.mark.parametrize("instruction_set", ["avx2", "avx512_vnni", "arm64"])
def test_onnx_int8_is_smaller_and_tracks_the_fp32_logits(tmp_path, exported, instruction_set):
    """Each instruction set's settings (uint8 weights for AVX2, int8 elsewhere) run here and track fp32 alike."""
    from hf_tbc.compress.quantization import quantize_onnx_file

    model, fp32 = exported
    int8 = tmp_path / "int8"
    shutil.copytree(fp32, int8, ignore=shutil.ignore_patterns("*.onnx*"))
    for graph in fp32.glob("*.onnx"):  # as save_onnx_seq2seq(int8=True) quantizes its fresh export
        quantize_onnx_file(graph, int8 / graph.name, instruction_set)

    def graph_bytes(folder):
        return sum(path.stat().st_size for path in folder.glob("*.onnx*"))

    assert graph_bytes(int8) < 0.5 * graph_bytes(fp32)
    ids, mask = _batch()
    dense, quantized = (OnnxModelForSeq2SeqLM.from_pretrained(folder) for folder in (fp32, int8))
    step = {}
    for name, onnx in (("fp32", dense), ("int8", quantized)):
        states, cross = onnx._encode(ids.numpy(), mask.numpy())
        start = np.full((4, 1), model.config.decoder_start_token_id, dtype=np.int64)
        step[name], _ = onnx._step(start, states, mask.numpy(), onnx._empty_past(4), cross)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.tensor(start)).logits[:, -1]
    assert np.allclose(step["fp32"], expected.numpy(), atol=1e-4)
    correlation = np.corrcoef(step["int8"].ravel(), step["fp32"].ravel())[0, 1]
    assert 0.95 < correlation < 1.0  # int8 changed the numbers, and kept them


def test_repeated_ngrams_are_banned_as_transformers_bans_them():
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 6, size=(5, 12))
    tokens[0] = [1, 2, 3, 4, 1, 2, 3, 4, 5, 1, 2, 3]  # a row that repeats: every size bans its next token
    for size in (1, 2, 3, 4):
        scores = np.zeros((5, 6))
        ban_repeated_ngrams(scores, tokens, size)
        expected = NoRepeatNGramLogitsProcessor(size)(torch.tensor(tokens), torch.zeros(5, 6)).numpy()
        assert np.array_equal(np.isinf(scores), np.isinf(expected)), size
        assert np.isinf(scores[0]).any()


def test_a_folder_without_graphs_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="export_onnx_seq2seq"):
        OnnxModelForSeq2SeqLM.from_pretrained(tmp_path)
