import csv

import pytest

from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data


def write_table(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture
def pair_files(tmp_path, english_lines):
    """An NLI-shaped task made from real sentences: does the hypothesis repeat the premise?"""
    rows = []
    for index, line in enumerate(english_lines[:120]):
        other = english_lines[(index * 7 + 3) % 120]
        rows.append((line, line if index % 2 else other, "entailment" if index % 2 else "contradiction"))
    train = write_table(tmp_path / "train.csv", ["premise", "hypothesis", "gold"], rows[:100])
    dev = write_table(tmp_path / "dev.csv", ["premise", "hypothesis", "gold"], rows[100:])
    return train, dev


def test_single_text_tsv_with_integer_labels(tmp_path, english_lines):
    train = write_table(
        tmp_path / "train.tsv",
        ["sentence", "label"],
        [(line, i % 2) for i, line in enumerate(english_lines[:40])],
        "\t",
    )
    dev = write_table(tmp_path / "dev.tsv", ["sentence", "label"], [(line, 1) for line in english_lines[40:50]], "\t")
    splits, labels = load_classification_data(ClassificationDataArguments(train_file=train, validation_file=dev))
    assert labels == ["0", "1"] and set(splits) == {"train", "validation"}
    assert splits["train"].column_names == ["text", "label"] and len(splits["validation"]) == 10
    assert set(splits["validation"]["label"]) == {1}


def test_several_files_per_split_are_one_split_as_in_run_mlm(tmp_path, english_lines):
    """``--train_file a.tsv,b.tsv`` means the same in every recipe: run_classification.py and compress.py too."""
    rows = [(line, i % 2) for i, line in enumerate(english_lines[:60])]
    first = write_table(tmp_path / "a.tsv", ["sentence", "label"], rows[:25], "\t")
    second = write_table(tmp_path / "b.tsv", ["sentence", "label"], rows[25:50], "\t")
    dev = write_table(tmp_path / "dev.tsv", ["sentence", "label"], rows[50:], "\t")
    splits, _ = load_classification_data(
        ClassificationDataArguments(train_file=f"{first}, {second}", validation_file=f"{dev},{first}")
    )
    assert len(splits["train"]) == 50 and splits["train"]["text"] == [text for text, _ in rows[:50]]
    assert len(splits["validation"]) == 35
    with pytest.raises(ValueError, match=r"--train_file .*missing.tsv does not exist"):
        load_classification_data(ClassificationDataArguments(train_file=f"{first},{tmp_path / 'missing.tsv'}"))
    other_kind = write_table(tmp_path / "c.csv", ["sentence", "label"], rows[:3])
    with pytest.raises(ValueError, match="all of one kind"):
        load_classification_data(ClassificationDataArguments(train_file=f"{first},{other_kind}"))


def test_pair_text_with_string_labels(pair_files):
    train, dev = pair_files
    arguments = ClassificationDataArguments(
        train_file=train, validation_file=dev, text_column="premise", text_pair_column="hypothesis", label_column="gold"
    )
    splits, labels = load_classification_data(arguments)
    assert labels == ["contradiction", "entailment"]
    assert set(splits["train"].column_names) == {"text", "text_pair", "label"}
    row = splits["validation"][1]
    assert row["label"] == 1 and row["text"] == row["text_pair"]


def test_validation_only_uses_the_models_label_names(pair_files):
    _, dev = pair_files
    arguments = ClassificationDataArguments(
        validation_file=dev, text_column="premise", text_pair_column="hypothesis", label_column="gold"
    )
    splits, labels = load_classification_data(arguments, label_names=["entailment", "contradiction"])
    assert set(splits) == {"validation"} and labels == ["entailment", "contradiction"]
    assert splits["validation"][1]["label"] == 0
    with pytest.raises(ValueError, match=r"labels \['contradiction'\] .* not among the 2 known labels"):
        load_classification_data(arguments, label_names=["entailment", "neutral"])


def test_bad_columns_and_labels_are_named(tmp_path, pair_files):
    train, dev = pair_files
    with pytest.raises(ValueError, match="column 'label' is not in .*set --label_column"):
        load_classification_data(
            ClassificationDataArguments(train_file=train, validation_file=dev, text_column="premise")
        )
    with pytest.raises(ValueError, match="column 'claim' is not in .*set --text_pair_column"):
        load_classification_data(
            ClassificationDataArguments(
                train_file=train,
                validation_file=dev,
                text_column="premise",
                text_pair_column="claim",
                label_column="gold",
            )
        )
    odd = write_table(tmp_path / "odd.csv", ["premise", "hypothesis", "gold"], [("a b", "c d", "neutral")])
    with pytest.raises(ValueError, match=r"labels \['neutral'\] in the validation split"):
        load_classification_data(
            ClassificationDataArguments(
                train_file=train, validation_file=odd, text_column="premise", label_column="gold"
            )
        )
    empty = write_table(tmp_path / "empty.csv", ["premise", "hypothesis", "gold"], [])
    with pytest.raises(ValueError, match="no rows|empty"):
        load_classification_data(
            ClassificationDataArguments(
                train_file=train, validation_file=empty, text_column="premise", label_column="gold"
            )
        )
    with pytest.raises(ValueError, match="not a GLUE classification task"):
        load_classification_data(ClassificationDataArguments(task_name="squad"))


def test_glue_tasks_map_columns_and_mnli_evaluates_matched_and_mismatched(monkeypatch):
    """The Hub path, with `load_dataset` answered locally by a GLUE-shaped DatasetDict (tests stay offline)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    import hf_tbc.tasks.classification.data as classification

    features = Features(
        {
            "premise": Value("string"),
            "hypothesis": Value("string"),
            "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
            "idx": Value("int32"),
        }
    )

    def split(n, label):
        return Dataset.from_dict(
            {
                "premise": [f"premise {i}" for i in range(n)],
                "hypothesis": [f"claim {i}" for i in range(n)],
                "label": [label] * n,
                "idx": list(range(n)),
            },
            features=features,
        )

    glue = DatasetDict(
        {
            "train": split(6, 2),
            "validation_matched": split(3, 0),
            "validation_mismatched": split(2, 1),
            "test_matched": split(2, -1),
        }
    )
    asked = []
    monkeypatch.setattr(classification, "load_dataset", lambda name, config: asked.append((name, config)) or glue)
    splits, labels = load_classification_data(ClassificationDataArguments(task_name="MNLI"))
    assert asked == [("nyu-mll/glue", "mnli")]
    assert labels == ["entailment", "neutral", "contradiction"]
    assert set(splits) == {"train", "validation_matched", "validation_mismatched"}
    assert set(splits["train"].column_names) == {"text", "text_pair", "label"}
    assert splits["validation_mismatched"]["label"] == [1, 1] and splits["train"][0]["text_pair"] == "claim 0"


@pytest.fixture
def pretrained_dir(tmp_path, english_lines):
    """A pre-LayerNorm masked LM saved as run_mlm.py saves it (dropout 0), with a real tokenizer."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForMaskedLM

    from hf_tbc.tasks.mlm.data import train_tokenizer
    from hf_tbc.tasks.mlm.model import roberta_config

    tokenizer = train_tokenizer(Dataset.from_dict({"text": english_lines}), vocab_size=400)
    torch.manual_seed(0)
    config = roberta_config(
        "L2-H32",
        vocab_size=len(tokenizer),
        max_position_embeddings=130,
        pad_token_id=1,
        architecture="roberta-prelayernorm",
        config_overrides="hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
    )
    folder = tmp_path / "pretrained"
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("random_init", [False, True])
def test_finetuning_starts_from_the_checkpoint_or_from_fresh_weights(tmp_path, pretrained_dir, pair_files, random_init):
    """--random_init keeps the checkpoint's config and tokenizer and draws new weights: the control run for what
    pretraining adds. Finetuning sets dropout 0.1 on a checkpoint pretrained without it."""
    import json

    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    from hf_tbc.tasks.classification.arguments import ClassificationModelArguments, FinetuningArguments
    from hf_tbc.tasks.classification.train import finetune

    train, dev = pair_files
    out = tmp_path / "finetuned"
    record = finetune(
        ClassificationModelArguments(model_name_or_path=str(pretrained_dir), random_init=random_init),
        ClassificationDataArguments(
            train_file=train,
            validation_file=dev,
            text_column="premise",
            text_pair_column="hypothesis",
            label_column="gold",
            max_seq_length=32,
        ),
        FinetuningArguments(output_dir=str(out), max_steps=1, learning_rate=1e-12, disable_tqdm=True, report_to="none"),
    )
    start = AutoModelForMaskedLM.from_pretrained(pretrained_dir).state_dict()
    tuned = AutoModelForSequenceClassification.from_pretrained(out)
    name = "roberta_prelayernorm.encoder.layer.0.attention.self.query.weight"
    same = torch.allclose(tuned.state_dict()[name], start[name], atol=1e-6)
    assert same is not random_init
    assert type(tuned).__name__ == "RobertaPreLayerNormForSequenceClassification"
    assert tuned.config.hidden_dropout_prob == 0.1 and tuned.config.attention_probs_dropout_prob == 0.1
    saved = json.loads((out / "eval_results.json").read_text())
    assert saved["random_init"] is random_init and record["random_init"] is random_init
    assert saved["majority_accuracy"] == 0.5  # dev holds 10 of each label
    # the best evaluation's checkpoint is the saved model (one evaluation here: the first epoch's end, step 1)
    selection = saved["checkpoint_selection"]
    assert (selection["metric"], selection["best_step"], selection["evaluations"]) == ("eval_accuracy", 1, 1)
    assert not list(out.glob("checkpoint-*"))  # a finished run leaves no checkpoint behind


def test_majority_accuracy_predicts_the_most_frequent_training_label():
    from hf_tbc.tasks.classification.data import majority_accuracy

    assert majority_accuracy([0, 1, 1, 2, 1], [1, 0, 0, 1]) == 0.5
    assert majority_accuracy([2, 2, 0], [0, 0, 0]) == 0.0 and majority_accuracy([], [1]) == 0.0
