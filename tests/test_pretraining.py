"""The short-budget pretraining recipe's parts, checked in-process on tiny models."""

import pytest
import torch
from transformers import AutoModelForMaskedLM

from hf_tbc.hardware import native_bf16
from hf_tbc.tasks.mlm.model import SparsePrediction, roberta_config, sinusoidal_positions_


def tiny_masked_lm(architecture: str):
    torch.manual_seed(0)
    config = roberta_config(
        "L2-H32",
        vocab_size=120,
        max_position_embeddings=40,
        pad_token_id=1,
        config_overrides="hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
        architecture=architecture,
    )
    return AutoModelForMaskedLM.from_config(config)


def batch():
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 120, (4, 24), generator=generator)
    labels = input_ids.clone()
    labels[torch.rand(input_ids.shape, generator=generator) > 0.15] = -100
    return input_ids, labels


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("architecture", ["roberta-prelayernorm", "roberta"])
def test_sparse_prediction_gives_the_same_loss_and_gradients_as_the_full_head(architecture, static):
    model = tiny_masked_lm(architecture)
    input_ids, labels = batch()
    most = int((labels != -100).sum(dim=1).max())  # rows with fewer labels get -100 picks the loss ignores
    full = model(input_ids=input_ids, labels=labels)
    full.loss.backward()
    full_grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    masked = 4 * most if static else int((labels != -100).sum())
    with SparsePrediction(model, positions_per_row=most if static else None):
        sparse = model(input_ids=input_ids, labels=labels)
        sparse.loss.backward()
        assert sparse.logits.shape == (masked, 120)  # the head ran on the masked positions only
        without_labels = model(input_ids=input_ids)
        assert without_labels.logits.shape == (4, 24, 120)  # inference is untouched
    assert sparse.loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    for name, p in model.named_parameters():
        if name in full_grads:
            torch.testing.assert_close(p.grad, full_grads[name], rtol=1e-4, atol=1e-6)
    assert model(input_ids=input_ids, labels=labels).logits.shape == (4, 24, 120)  # hooks removed on exit


def test_sparse_prediction_names_models_without_a_head():
    with pytest.raises(ValueError, match="no lm_head or cls module.*--sparse_prediction false"):
        SparsePrediction(torch.nn.Linear(2, 2))


def test_sinusoidal_positions_make_neighbours_alike_at_the_word_embeddings_scale(tmp_path):
    model = tiny_masked_lm("roberta-prelayernorm")
    table = model.base_model.embeddings.position_embeddings
    sinusoidal_positions_(table, std=0.02)
    weight = table.weight.detach()
    assert table.padding_idx == 1 and torch.all(weight[1] == 0)
    rows = torch.cat([weight[:1], weight[2:]])
    assert rows.std().item() == pytest.approx(0.02, rel=0.05)
    assert weight[5, 0] / weight[5, 1] == pytest.approx(torch.tan(torch.tensor(5.0)).item(), rel=1e-3)  # sin/cos of 5
    similarity = torch.nn.functional.cosine_similarity
    near, far = similarity(weight[10], weight[11], dim=0), similarity(weight[10], weight[30], dim=0)
    assert near > 0.8 > far  # random rows would be near 0 for both
    offset = [similarity(weight[p], weight[p + 3], dim=0).item() for p in (4, 12, 20)]
    assert max(offset) - min(offset) < 1e-4  # an offset looks the same wherever it starts
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(reloaded) is type(model)
    torch.testing.assert_close(reloaded.base_model.embeddings.position_embeddings.weight, weight)


@pytest.mark.parametrize(
    "cpuinfo, expected",
    [
        ("flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16\n", True),  # AMD Zen 4, Intel Cooper Lake
        ("flags\t\t: fpu sse2 avx2 fma amx_tile amx_bf16 amx_int8\n", True),  # Intel Sapphire Rapids
        ("flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n", False),  # AVX-512 without bf16: emulated, slower
        ("flags\t\t: fpu sse2 avx2 fma\n", False),
        ("Features\t: fp asimd sve bf16 i8mm\n", True),  # ARM Neoverse V1 / Graviton3
        ("Features\t: fp asimd\n", False),
    ],
)
def test_bf16_is_on_by_default_only_where_the_cpu_computes_it_natively(monkeypatch, cpuinfo, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16(cpuinfo) is expected


@pytest.mark.parametrize("capability, expected", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_is_on_only_for_gpus_with_bf16_units_read_on_this_ranks_device(monkeypatch, capability, expected):
    asked = []

    def emulation_probe(*args, **kwargs):  # counts V100/T4 emulation as support and allocates on cuda:0
        raise AssertionError("torch.cuda.is_bf16_supported was called")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulation_probe)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert native_bf16() is expected
    assert asked == [3]  # the local rank's GPU, not cuda:0


@pytest.mark.parametrize("native", [True, False])
def test_the_recipes_train_in_bf16_by_default_exactly_where_the_hardware_computes_it(monkeypatch, tmp_path, native):
    import hf_tbc.budget.arguments
    from hf_tbc.tasks.classification.arguments import FinetuningArguments
    from hf_tbc.tasks.mlm.arguments import PretrainingArguments
    from hf_tbc.tasks.translation.arguments import TranslationTrainingArguments

    monkeypatch.setattr(hf_tbc.budget.arguments, "native_bf16", lambda: native)
    for arguments in (PretrainingArguments, TranslationTrainingArguments, FinetuningArguments):
        assert arguments(output_dir=str(tmp_path)).bf16 is native
        assert arguments(output_dir=str(tmp_path), bf16=False).bf16 is False  # an explicit choice stays


@pytest.mark.parametrize("architecture", ["roberta", "roberta-prelayernorm"])
def test_the_default_attention_builds_on_every_supported_transformers(architecture):
    """sdpa, the default off bf16 CPUs, where the class has it; eager where it has not (transformers 4.57's
    pre-LayerNorm RoBERTa), so the default never fails to build."""
    from transformers import AutoModelForMaskedLM, RobertaConfig, RobertaPreLayerNormConfig

    from hf_tbc.tasks.mlm.model import training_attention

    kind = RobertaConfig if architecture == "roberta" else RobertaPreLayerNormConfig
    config = kind(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    attention = training_attention(config, "cpu", bf16=False)
    model = AutoModelForMaskedLM.from_config(config, attn_implementation=attention)
    assert model.config._attn_implementation == attention in ("sdpa", "eager")
    roberta = RobertaConfig()
    assert training_attention(roberta, "cpu", False, "sdpa") == "sdpa"
    assert training_attention(config, "cpu", False, "eager") == "eager"
