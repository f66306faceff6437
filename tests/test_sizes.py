import pytest
from transformers import AutoModelForMaskedLM

from hf_tbc.tasks.mlm.model import (
    MODEL_SIZES,
    PAPER_DEPTHS,
    PAPER_WIDTHS,
    count_parameters,
    get_model_size,
    roberta_config,
    training_flops_per_token,
)


def test_presets_cover_the_papers_depth_and_width_grids_with_roberta_shapes():
    for layers in PAPER_DEPTHS:
        assert f"L{layers}-H768" in MODEL_SIZES
    for hidden in PAPER_WIDTHS:
        assert f"L12-H{hidden}" in MODEL_SIZES
    base = get_model_size("L12-H768")
    assert (base.num_attention_heads, base.intermediate_size) == (12, 3072)
    assert get_model_size("l24-h1536").num_attention_heads == 24
    assert {"L2-H32", "L2-H64", "L4-H256"} <= set(MODEL_SIZES)


def test_any_depth_and_width_is_a_size_with_the_presets_rule():
    one = get_model_size("L1-H128")
    assert (one.num_hidden_layers, one.hidden_size, one.num_attention_heads, one.intermediate_size) == (1, 128, 2, 512)
    assert get_model_size("l3-h192").num_attention_heads == 3
    for name, size in MODEL_SIZES.items():  # the presets follow the same rule: heads = hidden / 64, at least 2
        assert get_model_size(name) == size and size.num_attention_heads == max(size.hidden_size // 64, 2)


def test_a_name_that_is_not_a_size_says_how_sizes_are_written():
    written = r"unknown model size 'base': write sizes as L\{layers\}-H\{hidden\}.*L12-H768"
    with pytest.raises(ValueError, match=written):
        get_model_size("base")
    for bad in ("L0-H128", "L2-H16", "L2-H200"):  # no layer; too narrow; 200 not divisible by its 3 heads
        with pytest.raises(ValueError, match=f"model size '{bad}': needs at least one layer.*divisible by its"):
            get_model_size(bad)


@pytest.mark.parametrize("architecture", ["roberta", "roberta-prelayernorm"])
@pytest.mark.parametrize("size", ["L2-H32", "L2-H64", "L4-H256", "L3-H768"])
def test_parameter_count_matches_the_real_model(size, architecture):
    config = roberta_config(size, vocab_size=1000, max_position_embeddings=130, architecture=architecture)
    model = AutoModelForMaskedLM.from_config(config)
    assert config.model_type == architecture
    counted = count_parameters(config)
    assert counted["total"] == model.num_parameters()
    embeddings = sum(
        p.numel() for name, p in model.named_parameters() if "embeddings" in name and "LayerNorm" not in name
    )
    assert counted["non_embedding"] == model.num_parameters() - embeddings


def test_config_overrides_apply_and_bad_heads_are_rejected():
    config = roberta_config("L2-H64", vocab_size=500, config_overrides="hidden_dropout_prob=0.0,num_attention_heads=4")
    assert config.hidden_dropout_prob == 0.0 and config.num_attention_heads == 4
    with pytest.raises(ValueError, match="hidden size 64 is not divisible by num_attention_heads 3"):
        roberta_config("L2-H64", vocab_size=500, config_overrides="num_attention_heads=3")
    with pytest.raises(ValueError, match="config_overrides"):
        roberta_config("L2-H64", vocab_size=500, config_overrides="no_such_key=1")
    with pytest.raises(ValueError, match="unknown architecture 'bert': choose one of roberta-prelayernorm, roberta"):
        roberta_config("L2-H64", vocab_size=500, architecture="bert")


def test_flops_per_token_follow_six_n_plus_attention():
    config = roberta_config("L12-H768", vocab_size=50265)
    flops = training_flops_per_token(config, sequence_length=128)
    weights = 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 768 * 768 + 768 * 50265
    assert flops == 6 * weights + 3 * 12 * 4 * 128 * 768
    sparse = training_flops_per_token(config, sequence_length=128, prediction_fraction=0.15)
    assert flops - sparse == round(0.85 * 6 * (768 * 768 + 768 * 50265))  # the head runs on 15 % of the positions
    deeper = training_flops_per_token(roberta_config("L24-H768", vocab_size=50265), 128)
    assert deeper - flops == 12 * (6 * (4 * 768 * 768 + 2 * 768 * 3072) + 3 * 4 * 128 * 768)
