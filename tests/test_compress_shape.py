import math

import pytest
import torch
from transformers import M2M100ForConditionalGeneration, RobertaConfig, RobertaForMaskedLM

from hf_tbc.compress.shape import Shape, check_target, measure_importance, prune_to_shape, shape_of
from hf_tbc.errors import UsageError
from hf_tbc.tasks.translation.model import seq2seq_config


def m2m100(seed: int = 0) -> M2M100ForConditionalGeneration:
    torch.manual_seed(seed)
    wider = "encoder_attention_heads=4,decoder_attention_heads=4,encoder_ffn_dim=128,decoder_ffn_dim=128"
    config = seq2seq_config(
        "E2-D3-H64",
        vocab_size=60,
        max_position_embeddings=32,
        config_overrides=wider,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    return M2M100ForConditionalGeneration(config).eval()


def roberta(seed: int = 0) -> RobertaForMaskedLM:
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=60, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128
    )
    return RobertaForMaskedLM(config).eval()


def batches(seq2seq: bool) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 60, (4, 9), generator=generator)
    if seq2seq:
        return [{"input_ids": ids, "labels": torch.randint(3, 60, (4, 7), generator=generator)}]
    return [{"input_ids": ids, "labels": ids}]


@pytest.mark.parametrize("make, seq2seq", [(m2m100, True), (roberta, False)])
def test_pruning_to_the_same_shape_keeps_the_model_exactly(make, seq2seq):
    model = make()
    same, report = prune_to_shape(model, shape_of(model.config), measure_importance(model, batches(seq2seq)))
    batch = batches(seq2seq)[0]
    assert torch.equal(same(**batch).logits, model(**batch).logits)
    assert report.parameters_after == report.parameters_before


@pytest.mark.parametrize("make, seq2seq", [(m2m100, True), (roberta, False)])
def test_a_pruned_model_is_a_stock_model_of_the_target_config_that_reloads_unchanged(make, seq2seq, tmp_path):
    model = make()
    layers = {"encoder": 1, "decoder": 2} if seq2seq else {"encoder": 2}
    target = Shape(hidden=32, heads=2, ffn=48, layers=layers)
    pruned, report = prune_to_shape(model, target, measure_importance(model, batches(seq2seq)))
    assert shape_of(pruned.config) == target and shape_of(model.config).hidden == 64  # the dense model untouched
    assert report.parameters_after == sum(p.numel() for p in type(model)(pruned.config).parameters())
    pruned.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    batch = batches(seq2seq)[0]
    assert torch.allclose(loaded(**batch).logits, pruned(**batch).logits)


def test_m2m100_tokens_enter_the_narrowed_model_at_their_dense_scale_and_the_logits_are_compensated():
    model = m2m100()
    scores = measure_importance(model, batches(True))
    pruned, _ = prune_to_shape(model, Shape(32, 2, 128, {"encoder": 2, "decoder": 3}), scores)
    kept = scores.channels.argsort(descending=True)[:32].sort().values
    ids = torch.tensor([[5, 9, 13]])
    dense = model.model.encoder.embed_tokens(ids)[..., kept]  # times sqrt(64)
    assert torch.allclose(pruned.model.encoder.embed_tokens(ids), dense, atol=1e-6)  # times sqrt(32), scaled back
    factor = math.sqrt(64 / 32)
    norm, dense_norm = pruned.model.decoder.layer_norm, model.model.decoder.layer_norm
    assert torch.allclose(norm.weight * factor, dense_norm.weight[kept])
    assert pruned.lm_head.weight.data_ptr() == pruned.model.shared.weight.data_ptr()  # still tied


def test_the_least_used_head_and_the_layer_that_changes_nothing_go_first():
    model = m2m100()
    with torch.no_grad():
        attention = model.model.encoder.layers[0].self_attn
        attention.v_proj.weight[16:32] = 0  # head 1 of encoder layer 0 outputs nothing
        attention.v_proj.bias[16:32] = 0
        idle = model.model.decoder.layers[1]  # pre-LayerNorm: zero branch outputs leave the stream unchanged
        for linear in (idle.self_attn.out_proj, idle.encoder_attn.out_proj, idle.fc2):
            linear.weight.zero_()
            linear.bias.zero_()
    scores = measure_importance(model, batches(True))
    assert scores.heads["model.encoder.layers.0.self_attn"].argmin() == 1
    assert scores.layers["decoder"].argmin() == 1
    _, report = prune_to_shape(model, Shape(48, 3, 128, {"encoder": 2, "decoder": 2}), scores)
    assert report.kept_layers == {"encoder": [0, 1], "decoder": [0, 2]}


def test_a_target_that_would_split_heads_or_grow_an_axis_is_refused_with_the_fix():
    source = Shape(hidden=256, heads=4, ffn=1024, layers={"encoder": 2, "decoder": 2})
    with pytest.raises(UsageError, match=r"heads would need heads 42.67 wide.*choose 2 heads \(hidden 128\)"):
        check_target(source, Shape(128, 3, 512, {"encoder": 2, "decoder": 2}))
    with pytest.raises(UsageError, match="target decoder layers 3 must be between 1 and the model's 2"):
        check_target(source, Shape(128, 2, 512, {"encoder": 2, "decoder": 3}))
    with pytest.raises(UsageError, match="target ffn width 2048"):
        check_target(source, Shape(128, 2, 2048, {"encoder": 2, "decoder": 2}))
