import pytest
import torch
from transformers import AutoModelForSequenceClassification, RobertaForSequenceClassification

from hf_tbc.compress.unstructured import FixedMaskCallback, check_sparsity, prune_model
from hf_tbc.compress.variants import prunable_weights
from hf_tbc.tasks.mlm.model import roberta_config


def tiny_classifier(seed: int = 0) -> RobertaForSequenceClassification:
    torch.manual_seed(seed)
    config = roberta_config("L2-H32", vocab_size=100, max_position_embeddings=40, pad_token_id=1)
    config.num_labels = 3
    return RobertaForSequenceClassification(config)


def test_prunable_weights_are_the_encoder_linears_only_by_default():
    model = tiny_classifier()
    names = set(prunable_weights(model))
    per_layer = {
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    }
    assert names == {f"roberta.encoder.layer.{i}.{part}.weight" for i in range(2) for part in per_layer}
    extended = set(prunable_weights(model, include_embeddings_and_head=True))
    assert {"roberta.embeddings.word_embeddings.weight", "classifier.out_proj.weight"} <= extended


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_pruning_reaches_the_target_and_leaves_the_rest_untouched(scope):
    model = tiny_classifier()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    masks, report = prune_model(model, 0.7, scope=scope)
    assert report.sparsity == pytest.approx(0.7, abs=0.01)
    weights = prunable_weights(model)
    for name, parameter in model.named_parameters():
        if name in weights:
            kept = parameter != 0
            assert torch.equal(kept, masks[name]) and torch.equal(parameter[kept], before[name][kept])
        else:  # embeddings, LayerNorms, biases, classifier: as they were
            assert torch.equal(parameter, before[name]), name
    if scope == "layer":
        assert all(abs((w == 0).float().mean().item() - 0.7) < 0.01 for w in weights.values())
    else:  # one threshold for all: no weight kept is smaller than any weight removed
        kept = torch.cat([before[n].abs()[m] for n, m in masks.items()])
        removed = torch.cat([before[n].abs()[~m] for n, m in masks.items()])
        assert kept.min() >= removed.max()
    assert report.parameters == model.num_parameters()
    assert report.nonzero_parameters == sum(int(torch.count_nonzero(p)) for p in model.parameters())


def test_pruned_model_saves_real_zeros_and_loads_with_plain_from_pretrained(tmp_path):
    model = tiny_classifier()
    _, report = prune_model(model, 0.5)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    zeros = sum(int((w == 0).sum()) for w in prunable_weights(loaded).values())
    assert zeros == report.zero_prunable_parameters


def test_fixed_masks_keep_pruned_weights_at_zero_through_optimizer_steps():
    model = tiny_classifier()
    masks, _ = prune_model(model, 0.6)
    weights = prunable_weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    callback = FixedMaskCallback(weights, masks)
    for _ in range(3):
        model(input_ids=torch.randint(3, 100, (4, 10)), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        callback.on_optimizer_step(None, None, None)
    assert all(torch.equal(weights[name] != 0, mask) for name, mask in masks.items())


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "half"])
def test_sparsity_outside_zero_one_is_rejected(bad):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        check_sparsity(bad)


def test_unknown_scope_is_rejected():
    with pytest.raises(ValueError, match="pruning scope 'row'"):
        prune_model(tiny_classifier(), 0.5, scope="row")


def test_zero_sparsity_changes_nothing():
    model = tiny_classifier()
    before = [p.detach().clone() for p in model.parameters()]
    prune_model(model, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
