"""Structured pruning leaves a smaller stock model; gradual pruning follows its schedule and holds its masks."""

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from hf_tbc.budget.arguments import BudgetTrainingArguments
from hf_tbc.budget.trainer import BudgetTrainer
from hf_tbc.compress.schedule import GradualPruningCallback, cubic_sparsity
from hf_tbc.compress.structured import (
    StructuredPruner,
    encoder_layers,
    magnitude_scores,
    plan_removal,
    remove_layers,
    shrink_feed_forward,
    structured_prune,
    taylor_scores,
)
from hf_tbc.compress.unstructured import UnstructuredPruner
from hf_tbc.compress.variants import prunable_weights
from hf_tbc.tasks.mlm.model import roberta_config

ARCHITECTURES = ["roberta", "roberta-prelayernorm"]


def classifier(architecture: str = "roberta", size: str = "L4-H128", seed: int = 0):
    torch.manual_seed(seed)
    config = roberta_config(size, vocab_size=120, max_position_embeddings=40, pad_token_id=1, architecture=architecture)
    config.num_labels = 2
    return AutoModelForSequenceClassification.from_config(config).eval()


def inputs(seed: int = 1, batch: int = 4):
    generator = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(3, 120, (batch, 12), generator=generator),
        "labels": torch.randint(0, 2, (batch,), generator=generator),
    }


def linear_weights(model) -> int:
    return sum(weight.numel() for weight in prunable_weights(model).values())


@pytest.mark.parametrize("sparsity", [0.0, 0.2, 0.35, 0.5, 0.7, 0.9])
def test_the_plan_removes_about_the_asked_fraction_and_keeps_a_layer(sparsity):
    plan = plan_removal(4, 256, 1024, sparsity)
    kept = (4 - plan.layers) * (4 * 256 * 256 + 2 * 256 * plan.neurons)
    removed = 1 - kept / (4 * (4 * 256 * 256 + 2 * 256 * 1024))
    assert plan.layers < 4 and plan.neurons % 8 == 0
    assert removed == pytest.approx(sparsity, abs=0.05)
    assert plan_removal(4, 256, 1024, sparsity, layer_share=0.0).layers == 0 or sparsity > 0.6


def test_removing_feed_forward_neurons_is_exactly_zeroing_them():
    model = classifier()
    batch = inputs()
    keep = [torch.randperm(512, generator=torch.Generator().manual_seed(i))[:96] for i in range(4)]
    zeroed = classifier()
    with torch.no_grad():
        for layer, indices in zip(encoder_layers(zeroed), keep):
            dropped = torch.ones(512, dtype=torch.bool)
            dropped[indices] = False
            layer.intermediate.dense.weight[dropped] = 0
            layer.intermediate.dense.bias[dropped] = 0
            layer.output.dense.weight[:, dropped] = 0
    shrink_feed_forward(model, keep)
    assert model.config.intermediate_size == 96
    assert all(layer.intermediate.dense.weight.shape == (96, 128) for layer in encoder_layers(model))
    torch.testing.assert_close(model(**batch).logits, zeroed(**batch).logits)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_structured_pruning_saves_a_smaller_stock_model_that_loads_back(tmp_path, architecture):
    model = classifier(architecture)
    before = linear_weights(model)
    report = structured_prune(model, 0.5)
    assert report.removed_layers == [3]  # magnitude importance drops the top layer first
    assert (model.config.num_hidden_layers, model.config.intermediate_size) == (3, 256)
    assert report.sparsity == pytest.approx(1 - linear_weights(model) / before) == pytest.approx(0.5, abs=0.05)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model) and len(encoder_layers(loaded)) == 3
    assert loaded.config.intermediate_size == 256 and loaded.num_parameters() == model.num_parameters()
    batch = inputs()
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
    files = {path.name: path.stat().st_size for path in tmp_path.iterdir()}
    unpruned = tmp_path / "dense"
    classifier(architecture).save_pretrained(unpruned)
    assert files["model.safetensors"] < (unpruned / "model.safetensors").stat().st_size


def test_magnitude_keeps_the_largest_neurons_of_each_layer():
    model = classifier()
    with torch.no_grad():
        for layer in encoder_layers(model):
            layer.intermediate.dense.weight[:40] *= 10  # neurons 0..39 are the big ones in every layer
    neurons, layers = magnitude_scores(model)
    assert neurons.shape == (4, 512) and layers.argmin() == 3
    structured_prune(model, 0.55, layer_share=0.0)
    assert model.config.num_hidden_layers == 4 and model.config.intermediate_size < 512
    for layer in encoder_layers(model):
        norms = layer.intermediate.dense.weight.norm(dim=1)
        assert (norms[:40] > 5 * norms[40:].max()).all()


def test_taylor_scores_read_gradients_change_no_weight_and_rank_a_dead_neuron_last():
    model = classifier("roberta-prelayernorm")
    with torch.no_grad():
        layer = encoder_layers(model)[1]
        layer.intermediate.dense.weight[7] = 0
        layer.intermediate.dense.bias[7] = 0
        layer.output.dense.weight[:, 7] = 0
    before = [parameter.detach().clone() for parameter in model.parameters()]
    neurons, layers = taylor_scores(model, [inputs(seed) for seed in range(3)])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(parameter.grad is None for parameter in model.parameters())
    assert neurons.shape == (4, 512) and layers.shape == (4,) and (layers > 0).all()
    assert neurons[1, 7] == 0 and neurons[1].argmin() == 7
    report = structured_prune(model, 0.4, "taylor", scores=(neurons, layers))
    assert report.importance == "taylor" and report.removed_layers == [int(layers.argmin())]


def _loss(model, batch) -> float:
    with torch.no_grad():
        return model(**batch).loss.item()


def test_zeroing_a_pre_ln_layers_output_projections_skips_it_and_taylor_scores_exactly_those():
    model = classifier("roberta-prelayernorm")
    batches = [inputs(seed) for seed in range(3)]
    _, layer_scores = taylor_scores(model, batches)
    expected = []
    for index in range(4):
        total = 0.0
        for batch in batches:  # the first-order estimate of zeroing the two output projections of layer `index`
            model.zero_grad()
            model(**batch).loss.backward()
            layer = encoder_layers(model)[index]
            total += abs(
                sum(
                    float((p.detach() * p.grad).sum())
                    for linear in (layer.attention.output.dense, layer.output.dense)
                    for p in (linear.weight, linear.bias)
                )
            )
        expected.append(total / len(batches))
    model.zero_grad(set_to_none=True)
    torch.testing.assert_close(layer_scores, torch.tensor(expected), rtol=1e-4, atol=1e-8)

    skipped = classifier("roberta-prelayernorm")
    remove_layers(skipped, [2])
    zeroed = classifier("roberta-prelayernorm")
    with torch.no_grad():
        layer = encoder_layers(zeroed)[2]
        for linear in (layer.attention.output.dense, layer.output.dense):
            linear.weight.zero_()
            linear.bias.zero_()
    torch.testing.assert_close(zeroed(**inputs()).logits, skipped(**inputs()).logits)


def test_taylor_layer_removal_is_refused_for_post_layer_norm_models():
    batches = [inputs(seed) for seed in range(2)]
    with pytest.raises(ValueError, match="only for pre-LayerNorm models.*--importance magnitude, or --layer_share 0"):
        structured_prune(classifier("roberta"), 0.5, "taylor", batches=batches)
    with pytest.raises(ValueError, match="only for pre-LayerNorm models"):
        StructuredPruner(classifier("roberta"), 0.5, "taylor")
    report = structured_prune(classifier("roberta"), 0.5, "taylor", batches=batches, layer_share=0.0)  # neurons only
    assert report.removed_layers == [] and report.intermediate_size < 512
    assert structured_prune(classifier("roberta"), 0.5, "magnitude").removed_layers  # top layers first: any model


@pytest.mark.parametrize("activation", ["gelu", "sigmoid", "laplace"])  # act(0): 0, 0.5, 0.24
def test_masked_neurons_are_removed_whatever_the_activation_gives_at_zero(activation):
    model = classifier("roberta-prelayernorm")
    model.config.hidden_act = activation
    reference = AutoModelForSequenceClassification.from_config(model.config).eval()  # rebuilt with that activation
    reference.load_state_dict(model.state_dict())
    pruner = StructuredPruner(reference, 0.5, layer_share=0.0)
    pruner.prune_to(0.5)
    masked = reference(**inputs()).logits
    pruner.finish()  # the masked neurons sliced out
    assert reference.config.intermediate_size < 512
    torch.testing.assert_close(reference(**inputs()).logits, masked)


def test_taylor_importance_without_data_is_a_clear_error():
    with pytest.raises(ValueError, match="needs labelled batches"):
        structured_prune(classifier("roberta-prelayernorm"), 0.5, "taylor")


def test_at_least_one_layer_stays():
    with pytest.raises(ValueError, match="at least one layer must stay"):
        remove_layers(classifier(), range(4))
    assert plan_removal(2, 64, 256, 0.99).layers == 1


def test_the_cubic_schedule_rises_fast_then_slowly_and_holds():
    values = [cubic_sparsity(p / 20, 0.8, start=0.1, end=0.6) for p in range(21)]
    assert values[0] == values[2] == 0.0 and values[12:] == [pytest.approx(0.8)] * 9
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert cubic_sparsity(0.35, 0.8, 0.1, 0.6) == pytest.approx(0.8 * (1 - 0.5**3))  # halfway: 7/8 of the way
    with pytest.raises(ValueError, match="pruning window"):
        cubic_sparsity(0.5, 0.8, start=0.7, end=0.6)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_gradual_structured_masks_are_exactly_the_final_smaller_model(architecture):
    model = classifier(architecture)
    pruner = StructuredPruner(model, 0.6)
    for sparsity in (0.2, 0.4, 0.6):
        pruner.prune_to(sparsity)
    masked = model(**inputs()).logits
    report = pruner.finish()
    assert model.config.num_hidden_layers < 4 and model.config.intermediate_size < 512
    assert report.sparsity == pytest.approx(0.6, abs=0.06)
    torch.testing.assert_close(model(**inputs()).logits, masked)


def _train(model, callback, steps: int = 24):
    rows = [inputs(seed, batch=1) for seed in range(64)]
    dataset = Dataset.from_dict(
        {"input_ids": [row["input_ids"][0].tolist() for row in rows], "labels": [int(row["labels"][0]) for row in rows]}
    )
    args = BudgetTrainingArguments(
        output_dir="unused",
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        schedule_by="steps",
        use_cpu=True,
    )
    trainer = BudgetTrainer(
        model=model.train(), args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(_Pad())
    )
    callback.attach(trainer)
    trainer.train()


class _Pad:
    """The least a collator needs from a tokenizer: pad token id 1, right padding."""

    pad_token_id = 1
    padding_side = "right"
    model_input_names = ["input_ids", "attention_mask"]

    def pad(self, features, **kwargs):
        width = max(len(feature["input_ids"]) for feature in features)
        ids = [feature["input_ids"] + [1] * (width - len(feature["input_ids"])) for feature in features]
        mask = [[1] * len(feature["input_ids"]) + [0] * (width - len(feature["input_ids"])) for feature in features]
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor([feature["labels"] for feature in features]),
        }


@pytest.mark.parametrize("importance", ["magnitude", "taylor"])
def test_gradual_structured_pruning_during_training_ends_as_a_smaller_model(tmp_path, importance, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = classifier("roberta-prelayernorm")
    callback = GradualPruningCallback(StructuredPruner(model, 0.6, importance), 0.6, end=0.5, events=4)
    _train(model, callback)
    sparsities = [sparsity for _, _, sparsity in callback.history]
    assert sparsities == sorted(sparsities) and sparsities[-1] == pytest.approx(0.6) and len(sparsities) == 4
    assert callback.history[-1][0] <= 13  # the window closed at half of the 24 steps: the rest was recovery
    assert callback.report.sparsity == pytest.approx(0.6, abs=0.06)
    assert model.config.num_hidden_layers == len(encoder_layers(model)) < 4


def test_gradual_unstructured_pruning_holds_its_masks_through_recovery(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = classifier()
    callback = GradualPruningCallback(UnstructuredPruner(model), 0.7, end=0.5, events=5)
    _train(model, callback)
    weights = prunable_weights(model)
    zeros = sum(int((weight == 0).sum()) for weight in weights.values()) / linear_weights(model)
    assert zeros == pytest.approx(0.7, abs=0.01) and callback.report.sparsity == pytest.approx(0.7, abs=0.01)
    assert [round(s, 3) for _, _, s in callback.history] == [
        round(cubic_sparsity(k / 10, 0.7, 0, 0.5), 3) for k in range(1, 6)
    ]
