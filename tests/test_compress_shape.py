import math

import pytest
import torch
from transformers import M2M100ForConditionalGeneration, RobertaConfig, RobertaForMaskedLM

from hf_tbc.compress.shape import (
    Shape,
    _sinusoid_channels,
    check_target,
    measure_importance,
    parse_shape,
    prune_to_shape,
    shape_of,
    smaller_shapes,
)
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
    kept = _sinusoid_channels(scores.channels, 32)  # M2M100: by importance within each frequency bucket
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


def test_shapes_are_named_like_the_tasks_sizes_with_the_models_own_head_width():
    encoder_decoder = shape_of(seq2seq_config("E2-D2-H384", vocab_size=50))
    small = shape_of(seq2seq_config("E2-D2-H128", vocab_size=50))
    assert parse_shape("e2-d2-h128", encoder_decoder) == small  # the config E2-D2-H128 has when trained from scratch
    assert parse_shape("E2-D1-H256", encoder_decoder).layers == {"encoder": 2, "decoder": 1}
    roberta = Shape(hidden=256, heads=4, ffn=1024, layers={"encoder": 4})
    assert parse_shape("L2-H128", roberta) == Shape(hidden=128, heads=2, ffn=512, layers={"encoder": 2})
    with pytest.raises(UsageError, match="write this model's shapes like its sizes, e.g. E2-D1-H128"):
        parse_shape("L2-H128", encoder_decoder)
    with pytest.raises(UsageError, match="hidden 96 is not a whole number of this model's 64-wide heads"):
        parse_shape("L2-H96", roberta)
    with pytest.raises(UsageError, match="target encoder layers 6 must be between 1 and the model's 4"):
        parse_shape("L6-H128", roberta)
    # the model's own shape is left out (a study's shapes apply to its smallest size too)
    config = seq2seq_config("E2-D2-H128", vocab_size=50)
    assert smaller_shapes(["E2-D2-H128", "E1-D1-H128"], config) == ["E1-D1-H128"]


def test_a_narrowed_m2m100_keeps_channels_whose_sinusoids_match_its_own_positions():
    """The narrowed model adds the sinusoids of its own width: the kept channels are chosen so that their dense
    sinusoids are near those, where the most important channels alone would each meet another one's."""
    from transformers.models.m2m_100.modeling_m2m_100 import M2M100SinusoidalPositionalEmbedding

    assert _sinusoid_channels(torch.arange(8.0), 4).tolist() == [1, 3, 5, 7]  # the better of each pair, sin and cos
    dense = M2M100SinusoidalPositionalEmbedding.get_embedding(60, 256)
    narrow = M2M100SinusoidalPositionalEmbedding.get_embedding(60, 128)
    for seed in range(3):
        scores = torch.rand(256, generator=torch.Generator().manual_seed(seed))
        by_bucket = (dense[:, _sinusoid_channels(scores, 128)] - narrow).abs().mean()
        by_magnitude = (dense[:, scores.argsort(descending=True)[:128].sort().values] - narrow).abs().mean()
        assert by_bucket < 0.1 < 0.2 < by_magnitude


@pytest.mark.parametrize("make, seq2seq", [(m2m100, True), (roberta, False)])
def test_importance_leaves_padding_out(make, seq2seq):
    model = make()
    batch = batches(seq2seq)[0]
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    padded = {
        "input_ids": torch.cat([batch["input_ids"], torch.full((4, 5), model.config.pad_token_id)], 1),
        "attention_mask": torch.cat([batch["attention_mask"], torch.zeros(4, 5, dtype=torch.long)], 1),
        # the decoder's padding too (its inputs are the labels shifted right); MLM labels pad like the input
        "labels": torch.cat([batch["labels"], torch.full((4, 3 if seq2seq else 5), -100)], 1),
    }
    plain, with_padding = measure_importance(model, [batch]), measure_importance(model, [padded])
    assert torch.allclose(with_padding.channels, plain.channels, atol=1e-4)
    for scores, padded_scores in ((plain.heads, with_padding.heads), (plain.neurons, with_padding.neurons)):
        assert scores.keys() == padded_scores.keys()
        for key in scores:
            assert torch.allclose(padded_scores[key], scores[key], atol=1e-4), key
    for stack in plain.layers:
        assert torch.allclose(with_padding.layers[stack], plain.layers[stack], atol=1e-5)
