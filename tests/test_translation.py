"""hf_tbc.tasks.translation and recipes/run_translation.py: sizes, pairs, the shared vocabulary, BLEU, and the recipe
run
the way a user runs it, on a small word-for-word language pair the test makes."""

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    EvalPrediction,
    M2M100ForConditionalGeneration,
    MarianMTModel,
    MBartForConditionalGeneration,
)

from hf_tbc.advise.outcome import final_eval_loss
from hf_tbc.budget.curves import read_curve
from hf_tbc.errors import UsageError
from hf_tbc.tasks.translation.bleu import TranslationMetrics, copy_source_scores, corpus_scores
from hf_tbc.tasks.translation.data import load_pairs, tokenize_pairs, train_pair_tokenizer
from hf_tbc.tasks.translation.model import get_model_size, seq2seq_config
from tests.conftest import ACCELERATE_ONE_PROCESS, REPO, sigterm_after_first_log

RECIPE = str(REPO / "recipes" / "run_translation.py")
ENGLISH = (
    "red blue green cat dog man woman runs sits eats big small house tree car ball child sees water street".split()
)
FRENCH = (
    "rouge bleu vert chat chien homme femme court assis mange grand petit maison arbre voiture balle enfant voit eau "
    "rue"
).split()
TINY = (
    "--model_size E1-D1-H64 --vocab_size 300 --per_device_train_batch_size 32 --logging_steps 5 --disable_tqdm true "
    "--dataloader_num_workers 0 --max_eval_samples 40 --max_target_length 24 --max_source_length 24"
).split()


def word_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """Sentences of 3 to 7 words and their word-for-word translations: learnable in seconds, and copying the source
    scores almost nothing."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words = [rng.randrange(len(ENGLISH)) for _ in range(rng.randint(3, 7))]
        rows.append((" ".join(ENGLISH[w] for w in words), " ".join(FRENCH[w] for w in words)))
    return rows


def write_tsv(path: Path, rows, header=("en", "fr")) -> str:
    path.write_text("\t".join(header) + "\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    return str(path)


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    return {
        split: write_tsv(folder / f"{split}.tsv", word_pairs(count, seed))
        for split, count, seed in (("train", 3000, 0), ("validation", 80, 1), ("test", 60, 2))
    }


def launch(*args: str) -> list[str]:
    return [*ACCELERATE_ONE_PROCESS, RECIPE, *args]


# -- sizes ---------------------------------------------------------------------------------------------------
def test_sizes_name_encoder_depth_decoder_depth_and_width():
    size = get_model_size("e6-d6-h512")
    assert (size.encoder_layers, size.decoder_layers, size.hidden_size, size.attention_heads, size.ffn_dim) == (
        6,
        6,
        512,
        8,
        2048,
    )
    assert size.name == "E6-D6-H512"
    assert get_model_size("E2-D1-H64").attention_heads == 2
    for bad in ("L4-H256", "E0-D2-H256", "E2-D2-H33", "E2-D2-H16", "E2-D2"):
        with pytest.raises(UsageError, match="E"):
            get_model_size(bad)


@pytest.mark.parametrize(
    "architecture, model_class",
    [("mbart", MBartForConditionalGeneration), ("marian", MarianMTModel), ("m2m100", M2M100ForConditionalGeneration)],
)
def test_configs_build_stock_models_with_tied_shared_embeddings(architecture, model_class):
    config = seq2seq_config(
        "E2-D1-H64",
        vocab_size=500,
        architecture=architecture,
        dropout=0.0,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=0,
    )
    model = AutoModelForSeq2SeqLM.from_config(config)
    assert isinstance(model, model_class)
    assert (config.encoder_layers, config.decoder_layers, config.d_model, config.encoder_ffn_dim) == (2, 1, 64, 256)
    embeddings = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight.data_ptr() == embeddings.data_ptr()
    assert model.get_encoder().embed_tokens.weight.data_ptr() == embeddings.data_ptr()
    with pytest.raises(UsageError, match="architecture"):
        seq2seq_config("E2-D1-H64", vocab_size=500, architecture="t5")


# -- pairs ---------------------------------------------------------------------------------------------------
def test_pairs_load_from_language_columns_and_hold_out_validation(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", word_pairs(100, 0))
    pairs = load_pairs(train_file=path, source_lang="en", target_lang="fr", validation_split_percentage=10)
    assert set(pairs) == {"train", "validation"} and (len(pairs["train"]), len(pairs["validation"])) == (90, 10)
    assert pairs["train"].column_names == ["source", "target"]
    first = pairs["train"][0]
    assert [FRENCH[ENGLISH.index(word)] for word in first["source"].split()] == first["target"].split()


def test_pairs_load_named_columns_json_translation_dicts_and_reversed_direction(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", [("the cat", "le chat")] * 3, header=("english", "french"))
    pairs = load_pairs(train_file=path, validation_file=path, source_column="english", target_column="french")
    assert pairs["validation"][0] == {"source": "the cat", "target": "le chat"}
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps({"translation": {"en": "the dog", "fr": "le chien"}}) + "\n" for _ in range(3)))
    pairs = load_pairs(train_file=str(jsonl), validation_file=str(jsonl), source_lang="fr", target_lang="en")
    assert pairs["train"][0] == {"source": "le chien", "target": "the dog"}


def test_bad_pairs_are_named(tmp_path):
    path = write_tsv(tmp_path / "train.tsv", [("a", "b")] * 3, header=("english", "french"))
    with pytest.raises(UsageError, match="column 'en' is not in .*--source_column"):
        load_pairs(train_file=path)
    with pytest.raises(UsageError, match="does not exist"):
        load_pairs(train_file=str(tmp_path / "missing.tsv"))
    with pytest.raises(UsageError, match="no data"):
        load_pairs()
    empty = write_tsv(tmp_path / "blank.tsv", [(" ", "b")] * 3)
    with pytest.raises(UsageError, match="no pair with text on both sides"):
        load_pairs(train_file=empty)
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text(json.dumps({"translation": {"en": "x", "de": "y"}}) + "\n")
    with pytest.raises(UsageError, match="no 'fr' side"):
        load_pairs(train_file=str(jsonl), validation_file=str(jsonl))


def test_one_vocabulary_for_both_sides_ends_each_text_with_eos(tmp_path):
    pairs = load_pairs(train_file=write_tsv(tmp_path / "train.tsv", word_pairs(300, 0)), validation_split_percentage=10)
    tokenizer = train_pair_tokenizer(pairs["train"], vocab_size=400)
    for word in ("cat", "chat"):  # words of both languages are in the one vocabulary
        assert len(tokenizer(word, add_special_tokens=False)["input_ids"]) <= 2
    encoded = tokenize_pairs(pairs["validation"], tokenizer, max_source_length=4, max_target_length=32)
    row = encoded[0]
    assert row["input_ids"][-1] == tokenizer.eos_token_id == row["labels"][-1]
    assert (
        len(row["input_ids"]) <= 4
        and tokenizer.decode(row["labels"], skip_special_tokens=True) == pairs["validation"][0]["target"]
    )
    tokenizer.save_pretrained(tmp_path / "saved")
    assert (
        AutoTokenizer.from_pretrained(tmp_path / "saved")("le chat")["input_ids"] == tokenizer("le chat")["input_ids"]
    )


@pytest.mark.parametrize("architecture", ["m2m100", "mbart", "marian"])
def test_generation_starts_from_the_token_training_starts_from(tmp_path, architecture):
    """mBART shifts labels its own way (the last token moves to the front): a fresh model must start decoding from
    that same token, or greedy decoding begins from a state training never saw."""
    from hf_tbc.tasks.translation.arguments import TranslationModelArguments
    from hf_tbc.tasks.translation.data import TranslationCollator
    from hf_tbc.tasks.translation.model import build_model, model_config, set_generation

    pairs = load_pairs(train_file=write_tsv(tmp_path / "train.tsv", word_pairs(200, 0)), validation_split_percentage=10)
    tokenizer = train_pair_tokenizer(pairs["train"], vocab_size=400)
    assert "token_type_ids" not in tokenizer("red cat")  # the encoder-decoders take none
    model_args = TranslationModelArguments(model_size="E1-D1-H64", architecture=architecture)
    model = build_model(model_config(model_args, tokenizer, 32))
    set_generation(model, 32, 1)
    features = tokenize_pairs(pairs["validation"], tokenizer, 32, 32)
    batch = TranslationCollator(tokenizer, model=model)([features[i] for i in range(4)])
    assert batch["decoder_input_ids"][:, 0].tolist() == [model.generation_config.decoder_start_token_id] * 4
    labels = batch["labels"].masked_fill(batch["labels"] == -100, tokenizer.pad_token_id)
    assert batch["decoder_input_ids"][:, 1:].tolist() == labels[:, :-1].tolist()


# -- BLEU ----------------------------------------------------------------------------------------------------
def test_bleu_and_chrf_against_references():
    references = ["un homme est assis sur un banc .", "deux chiens courent dans la neige ."]
    assert corpus_scores(references, references) == {"bleu": 100.0, "chrf": 100.0}
    partial = corpus_scores(["un homme est assis sur une chaise .", "deux chats dorment ."], references)
    assert 0 < partial["bleu"] < 100 and 0 < partial["chrf"] < 100
    assert copy_source_scores(["a man sits on a bench .", "two dogs run in the snow ."], references)["bleu"] < 10
    with pytest.raises(ValueError):
        corpus_scores(["one"], references)


def test_metrics_decode_generations_padded_with_minus_100(tmp_path):
    pairs = load_pairs(train_file=write_tsv(tmp_path / "train.tsv", word_pairs(300, 0)), validation_split_percentage=10)
    tokenizer = train_pair_tokenizer(pairs["train"], vocab_size=400)
    targets = ["chat rouge voit petit chien", "chien bleu mange eau", "chat rouge voit petit chien"]
    rows = [[tokenizer.bos_token_id] + tokenizer(text)["input_ids"] for text in targets]
    width = max(len(row) for row in rows) + 2
    generated = np.array([row + [-100] * (width - len(row)) for row in rows])
    metrics = TranslationMetrics(tokenizer, targets)(EvalPrediction(predictions=generated, label_ids=None))
    assert metrics["bleu"] == 100.0 and metrics["distinct"] == round(2 / 3, 4)
    assert metrics["gen_len"] == pytest.approx(
        np.mean([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets]), abs=0.01
    )


# -- the recipe ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_recipe_learns_a_word_for_word_pair_and_the_output_translates(tmp_path, pair_files):
    out = tmp_path / "run"
    done = subprocess.run(
        launch(
            *TINY,
            "--train_file",
            pair_files["train"],
            "--validation_file",
            pair_files["validation"],
            "--test_file",
            pair_files["test"],
            "--model_size",
            "E1-D1-H128",
            "--max_steps",
            "600",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "150",
            "--dropout",
            "0",
            "--output_dir",
            str(out),
        ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "eval_results.json").read_text())
    copy = results["copy_source"]["test"]["bleu"]
    assert results["bleu_split"] == "test" and copy < 5
    assert results["splits"]["test"]["bleu"] > 50, results["splits"]["test"]  # far above copying: it translates
    assert results["splits"]["test"]["distinct"] > 0.9  # different sources, different outputs
    bleu_curve = [row["eval_bleu"] for row in read_curve(out) if row.get("eval_bleu") is not None]
    assert len(bleu_curve) >= 3 and bleu_curve[-1] > bleu_curve[0]
    assert (out / "bleu_vs_time.png").stat().st_size > 0 and (out / "loss_vs_time.png").stat().st_size > 0

    from transformers.pipelines import SUPPORTED_TASKS

    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    # the saved decoding settings: beam search (--num_beams 5 by default) scored the splits; the curve stayed greedy
    assert model.generation_config.num_beams == 5 and results["decoding"].startswith("beam 5")
    assert results["curve_decoding"].startswith("greedy") and results["splits"]["test"]["decoding_s"] > 0
    generated = model.generate(**tokenizer(["red cat sees small dog"], return_tensors="pt"))
    outputs = [tokenizer.decode(generated[0], skip_special_tokens=True)]
    if "translation" in SUPPORTED_TASKS:  # transformers 4.x; 5.x removed the translation pipeline
        from transformers import pipeline

        outputs.append(
            pipeline("translation", model=str(out), device="cpu")("red cat sees small dog")[0]["translation_text"]
        )
    for text in outputs:
        words = text.split()
        assert sum(a == b for a, b in zip(words, "rouge chat voit petit chien".split())) >= 4, outputs


@pytest.mark.slow
def test_budgeted_run_records_decoding_time_off_the_budget(tmp_path, pair_files):
    out = tmp_path / "run"
    done = subprocess.run(
        launch(
            *TINY,
            "--train_file",
            pair_files["train"],
            "--validation_file",
            pair_files["validation"],
            "--time_budget",
            "8s",
            "--eval_every",
            "3s",
            "--output_dir",
            str(out),
        ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["stop_reason"] == "time_budget" and summary["train_s"] == pytest.approx(8, abs=2)
    assert summary["eval_s"] > 0 and summary["total_s"] == pytest.approx(
        summary["train_s"] + summary["eval_s"], abs=0.01
    )
    assert summary["eval_share_of_budget"] == pytest.approx(summary["eval_s"] / 8, abs=1e-3)
    assert "test" not in json.loads((out / "eval_results.json").read_text())["splits"]  # no test file, no test score
    assert AutoModelForSeq2SeqLM.from_pretrained(out).config.model_type == "m2m_100"

    continued = tmp_path / "continued"  # a checkpoint can be trained further, with its own tokenizer
    done = subprocess.run(
        launch(
            *TINY,
            "--train_file",
            pair_files["train"],
            "--validation_file",
            pair_files["validation"],
            "--model_name_or_path",
            str(out),
            "--max_steps",
            "3",
            "--output_dir",
            str(continued),
        ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((continued / "run_summary.json").read_text())["steps"] == 3
    assert AutoTokenizer.from_pretrained(continued).get_vocab() == AutoTokenizer.from_pretrained(out).get_vocab()


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint_and_records_the_preemption(tmp_path, pair_files):
    out = tmp_path / "run"
    arguments = [
        *TINY,
        "--train_file",
        pair_files["train"],
        "--validation_file",
        pair_files["validation"],
        "--time_budget",
        "10m",
        "--output_dir",
        str(out),
    ]
    returncode, stderr = sigterm_after_first_log([sys.executable, RECIPE, *arguments], out)
    assert returncode == 143, stderr[-3000:]  # "stopped from outside: requeue me"
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "trainer_state.json").exists()
    record = json.loads((out / "eval_results.json").read_text())  # the stage record says preempted, no final model
    assert record["stop_reason"] == "preempted" and record["model_saved"] is False
    assert not (out / "model.safetensors").exists()
    resumed = subprocess.run(
        [sys.executable, RECIPE, *arguments, "--time_budget", "4s", "--resume_from_checkpoint", "true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["resumed_from"] == str(checkpoints[0]) and summary["stop_reason"] == "time_budget"
    assert json.loads((out / "eval_results.json").read_text())["splits"]["validation"]["bleu"] >= 0
    assert AutoModelForSeq2SeqLM.from_pretrained(out).config.model_type == "m2m_100"


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, pair_files):
    out = tmp_path / "run"
    for flags, message in (
        (["--train_file", pair_files["train"], "--source_column", "english"], "column 'english'"),
        (["--train_file", pair_files["train"], "--model_size", "L4-H256"], "E{encoder layers}"),
        (["--train_file", str(tmp_path / "nope.tsv")], "does not exist"),
    ):
        done = subprocess.run(
            [sys.executable, RECIPE, *TINY, *flags, "--max_steps", "2", "--output_dir", str(out)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2, done.stderr[-2000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0]
        assert not out.exists() or not any(out.iterdir())


# -- study and release ---------------------------------------------------------------------------------------
def _fake_run(folder: Path, hypotheses: list[str], references: list[str], steps: int) -> None:
    from hf_tbc.tasks.translation.bleu import write_translations

    folder.mkdir(parents=True)
    scores = corpus_scores(hypotheses, references)
    split = {**scores, "examples": len(references), "distinct": 1.0, "loss": 1.0, "samples": []}
    (folder / "eval_results.json").write_text(json.dumps({"splits": {"validation": split}, "steps": steps}))
    write_translations(folder / "translations_validation.tsv", references, references, hypotheses)


def test_width_versus_depth_is_answered_from_the_records_with_a_bootstrap_interval(tmp_path):
    from hf_tbc.study.stages import StudyConfig
    from hf_tbc.tasks.translation.findings import width_versus_depth

    config_file = tmp_path / "study.yaml"
    config_file.write_text(
        f"name: t\ntask: translation\noutput_dir: {tmp_path / 'study'}\n"
        "sizes: [E1-D1-H64, E1-D1-H128, E2-D2-H64]\ntranslation: {time_budget: 1m}\n"
    )
    config = StudyConfig.from_yaml(str(config_file))
    assert config.time_budget == "1m" and config.task == "translation"
    references = [" ".join(FRENCH[(i * 7 + j) % 20] for j in range(6)) for i in range(120)]
    wrong = [" ".join(FRENCH[(i * 3 + j) % 20] for j in range(6)) for i in range(120)]
    good = [ref if i % 10 else wrong[i] for i, ref in enumerate(references)]  # 90 % exact
    poor = [ref if i % 2 else wrong[i] for i, ref in enumerate(references)]  # 50 % exact
    records = {}
    for size, hypotheses in (("E1-D1-H64", poor), ("E1-D1-H128", good), ("E2-D2-H64", poor)):
        _fake_run(config.stage_dir("translate", size), hypotheses, references, steps=100)
        records[size] = json.loads((config.stage_dir("translate", size) / "eval_results.json").read_text())
    text = width_versus_depth(config, records)
    assert "Wide-and-shallow **E1-D1-H128**" in text and "narrow-and-deep **E2-D2-H64**" in text
    assert "Width first held here" in text
    records["E2-D2-H64"] = records["E1-D1-H128"]
    (config.stage_dir("translate", "E2-D2-H64") / "translations_validation.tsv").write_bytes(
        (config.stage_dir("translate", "E1-D1-H128") / "translations_validation.tsv").read_bytes()
    )
    assert "not told apart" in width_versus_depth(config, records)


def test_equal_latency_also_sets_the_bar_at_the_small_models_fastest_variant():
    """int8 speeds the small model up too: the report also compares each size's best under the small model's
    fastest latency with the small model's own best there, not with its dense latency."""
    from hf_tbc.tasks.translation.findings import _against_the_small_fastest

    def row(variant, bleu, ms):
        return {"variant": variant, "bleu": bleu, "latency_ms": ms, "task": "translation"}

    grids = {
        "small": [row("dense-fp32", 40.0, 40.0), row("dense-onnx-int8", 39.5, 20.0)],
        "wide": [row("dense-fp32", 45.0, 60.0), row("structured75-onnx-int8", 41.0, 19.0)],
        "deep": [row("dense-fp32", 44.0, 90.0), row("dense-onnx-int8", 43.0, 30.0)],
    }
    text = " ".join(_against_the_small_fastest(grids, "small"))
    assert "its fastest variant, dense-onnx-int8, takes 20.0 ms" in text and "(39.50 BLEU)" in text
    assert "wide's best, structured75-onnx-int8 (41.00 BLEU, 19.0 ms), beats it by +1.50" in text
    assert "deep has no variant that fast (its fastest 30.0 ms)" in text
    grids["wide"][1]["bleu"] = 39.0
    assert "does not beat it by -0.50" in " ".join(_against_the_small_fastest(grids, "small"))


def test_the_report_compares_side_by_side_latencies_and_the_larger_size_at_the_small_shape(tmp_path):
    """The latency stage's timings replace each grid's own where they cover every variant (else the grids' own stay),
    and a larger size pruned to the small shape is set against the small dense model with a paired interval."""
    from types import SimpleNamespace

    from hf_tbc.tasks.translation.bleu import write_translations
    from hf_tbc.tasks.translation.findings import _at_the_small_shape, _side_by_side

    config = SimpleNamespace(
        root=tmp_path, sizes=["small", "wide"], stage_dir=lambda stage, size: tmp_path / stage / size
    )
    references = [f"le chat numero {index} dort" for index in range(40)]
    sources = [f"the cat number {index} sleeps" for index in range(40)]
    outputs = {
        ("small", "dense-fp32"): [ref if index % 2 else "un chien" for index, ref in enumerate(references)],
        ("wide", "to-small-fp32"): references,
    }
    for (size, variant), hypotheses in outputs.items():
        folder = config.stage_dir("compress", size) / variant
        folder.mkdir(parents=True)
        write_translations(folder / "translations_validation.tsv", sources, references, hypotheses)

    def row(variant, bleu, ms):
        return {"variant": variant, "bleu": bleu, "latency_ms": ms, "latency_ms_batched": ms / 8, "method": "none"}

    shaped = {"shape": "small", "distilled": True, "distill_beams": 4, "loss_before_recovery": 4.5}
    grids = {
        "small": [row("dense-fp32", 50.0, 40.0)],
        "wide": [
            row("dense-fp32", 60.0, 70.0),
            {**row("to-small-fp32", 100.0, 41.0), **shaped, "validation_loss": 2.25},
            {**row("to-small-onnx-int8", 99.0, 15.0), **shaped, "method": "onnx-int8", "validation_loss": 2.3},
        ],
    }
    assert _side_by_side(config, grids) is None and grids["wide"][0]["latency_ms"] == 70.0  # no timing: kept
    timed = [
        {"grid": size, "variant": entry["variant"], "latency_ms": 10.0 + index, "latency_ms_batched": 1.0}
        for size in grids
        for index, entry in enumerate(grids[size])
    ]
    (tmp_path / "latency").mkdir()
    (tmp_path / "latency" / "latency.json").write_text(json.dumps({"rows": timed[:-1], "margin": 0.08}))
    assert _side_by_side(config, grids) is None and grids["wide"][0]["latency_ms"] == 70.0  # one variant untimed
    (tmp_path / "latency" / "latency.json").write_text(json.dumps({"rows": timed, "margin": 0.08}))
    assert _side_by_side(config, grids) == 0.08
    assert [entry["latency_ms"] for entry in grids["wide"]] == [10.0, 11.0, 12.0]
    text = "\n".join(_at_the_small_shape(config, grids, "small", grids["small"][0]))
    assert "## (c) At the small model's own shape: larger sizes pruned to small" in text
    assert "| wide → small, to-small-fp32 | distilled, from 4-beam translations | 4.500 → 2.250 | 100.00 | +" in text
    assert "to-small-onnx-int8" not in text  # fp32 only: int8 has another cost
    low = float(text.split("| 100.00 | ")[1].split("[")[1].split(",")[0])
    assert low > 0  # every sentence right against half: the interval excludes no difference
    grids["wide"] = grids["wide"][:1]
    assert _at_the_small_shape(config, grids, "small", grids["small"][0]) == []


@pytest.mark.slow
def test_translation_study_reports_and_releases_with_translation_cards(tmp_path, pair_files):
    config_file = tmp_path / "mt.yaml"
    data = Path(pair_files["train"]).parent
    config_file.write_text(f"""name: mt-tiny
task: translation
output_dir: {tmp_path / "study"}
data_dir: {data}
sizes: [E1-D1-H64, E1-D1-H128, E2-D2-H64]
launcher: [accelerate, launch, --num_processes, "1", --num_machines, "1", --mixed_precision, "no",
           --dynamo_backend, "no"]
translation:
  time_budget: 6s
  train_file: "{{data_dir}}/train.tsv"
  validation_file: "{{data_dir}}/validation.tsv"
  test_file: "{{data_dir}}/test.tsv"
  vocab_size: 300
  max_eval_samples: 40
  max_target_length: 24
  per_device_train_batch_size: 32
  disable_tqdm: true
advisor:            # probes this short stay near the unigram line: the branch method would give no forecast
  probe_budget: 3s
  method: curve
release:
  hub_organization: study-test
  card_dataset: word-pairs
  card_dataset_config: en-fr
""")
    done = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "study.py"), "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    root = tmp_path / "study"
    report = (root / "report.md").read_text()
    for size in ("E1-D1-H64", "E1-D1-H128", "E2-D2-H64"):
        results = json.loads((root / "translate" / size / "eval_results.json").read_text())
        assert f"| {size} | " in report and f"| {results['splits']['validation']['bleu']:.1f} |" in report
    assert "Wide-and-shallow **E1-D1-H128**" in report and "bootstrap interval" in report
    advice = json.loads((root / "advice" / "advice.json").read_text())  # the advisor ran first, on these sizes
    assert advice["task"] == "translation" and set(advice["forecasts"]) == {"E1-D1-H64", "E1-D1-H128", "E2-D2-H64"}
    assert "## (a) Which size wins on wall-clock: the advisor's forecast against the outcome" in report
    for size, forecast in advice["forecasts"].items():
        summary = json.loads((root / "translate" / size / "run_summary.json").read_text())
        assert summary["resumed_from"] == forecast["checkpoint"]  # each run is its probe continued
        measured = final_eval_loss(root / "translate" / size)
        assert f"| {forecast['support']} | {measured:.3f} | {measured - forecast['forecast_loss']:+.3f} |" in report
    for figure in ("bleu_vs_time.png", "bleu_vs_steps.png", "loss_vs_time.png", "forecast_vs_outcome.png"):
        assert (root / figure).stat().st_size > 10_000
    release = json.loads((root / "release" / "release.json").read_text())
    assert [entry["repo_id"] for entry in release] == [
        f"study-test/tbc-{size}-en-fr" for size in ("E1-D1-H64", "E1-D1-H128", "E2-D2-H64")
    ]
    card = (root / "release" / "tbc-E1-D1-H128-en-fr" / "README.md").read_text()
    results = json.loads((root / "translate" / "E1-D1-H128" / "eval_results.json").read_text())
    assert "pipeline_tag: translation" in card and "type: translation" in card and "type: bleu" in card
    assert f"value: {results['splits']['test']['bleu']}" in card and "split: test" in card
    released = root / "release" / "tbc-E1-D1-H128-en-fr"
    tokenizer = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"}
    names = {path.name for path in released.iterdir()}  # what loads and describes the model; no translations file
    assert (
        names - tokenizer
        == {"README.md", "hf_tbc_record.json", "config.json", "generation_config.json", "model.safetensors"}
        and "tokenizer.json" in names
    ), sorted(names)
    record = json.loads((released / "hf_tbc_record.json").read_text())
    assert record["training"]["data"] == ["train.tsv"] and record["evaluation"]["dataset"] == "word-pairs"
    assert "samples" not in record["evaluation"]["splits"]["test"]
    assert str(tmp_path) not in card and str(data.name) + "/" not in card
    assert AutoModelForSeq2SeqLM.from_pretrained(root / "release" / "tbc-E1-D1-H128-en-fr").config.d_model == 128


def test_the_study_releases_by_the_side_by_side_latencies_where_the_latency_stage_ran(tmp_path):
    """Release chooses the larger sizes' variants as the report's equal-latency answer does: under the small dense
    model's latency and by the latencies the latency stage timed side by side, once that stage has run."""
    from types import SimpleNamespace

    from hf_tbc.tasks.translation.task import _release_options

    config = SimpleNamespace(
        root=tmp_path,
        sizes=["small", "wide"],
        stage_dir=lambda stage, size: tmp_path / stage / size,
        section=lambda name: {"sparsities": "0"} if name == "compression" else {},
    )
    (tmp_path / "compress" / "small").mkdir(parents=True)
    own = {"variant": "dense-fp32", "bleu": 30.0, "latency_ms": 40.0, "method": "none"}
    (tmp_path / "compress" / "small" / "compression.jsonl").write_text(json.dumps(own) + "\n")
    options = _release_options(config)
    assert options["limit"] == 40.0 and "latency_dir" not in options  # no latency stage yet: the grid's own
    assert options["compression_dirs"] == [str(tmp_path / "compress" / "wide")]
    (tmp_path / "latency").mkdir()
    timed = [{"grid": "small", "variant": "dense-fp32", "latency_ms": 31.0}]
    (tmp_path / "latency" / "latency.json").write_text(json.dumps({"rows": timed, "margin": 0.05}))
    options = _release_options(config)
    assert options["limit"] == 31.0 and options["latency_dir"] == str(tmp_path / "latency")


@pytest.mark.slow
def test_translation_study_compresses_and_releases_the_small_dense_and_the_large_compressed(tmp_path, pair_files):
    """With a compression section every size is compressed; the release holds the small size's trained model dense
    and the larger size's best variant under the release limit, with a card that states BLEU, chrF, latency and
    size; the report answers the equal-latency question."""
    config_file = tmp_path / "mt.yaml"
    data = Path(pair_files["train"]).parent
    config_file.write_text(f"""name: mt-compress
task: translation
output_dir: {tmp_path / "study"}
data_dir: {data}
sizes: [E1-D1-H64, E1-D1-H128]
launcher: [accelerate, launch, --num_processes, "1", --num_machines, "1", --mixed_precision, "no",
           --dynamo_backend, "no"]
advisor: false
translation:
  time_budget: 6s
  train_file: "{{data_dir}}/train.tsv"
  validation_file: "{{data_dir}}/validation.tsv"
  vocab_size: 300
  max_eval_samples: 10
  max_target_length: 24
  num_beams: 2
  disable_tqdm: true
compression:
  sparsities: "0,0.5"
  target_shapes: E1-D1-H64
  recovery_steps: 2
  latency_sentences: 3
  max_eval_samples: 10
release:
  hub_organization: study-test
  card_dataset: word-pairs
  card_dataset_config: en-fr
  limit: 100000
""")
    done = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "study.py"), "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    root = tmp_path / "study"
    large = [
        json.loads(line) for line in (root / "compress" / "E1-D1-H128" / "compression.jsonl").read_text().splitlines()
    ]
    assert {row["variant"] for row in large} == {
        f"{sparsity}-{method}"
        for sparsity in ("dense", "structured50", "to-E1-D1-H64")
        for method in ("fp32", "torch-int8", "onnx", "onnx-int8")
    }
    small = (root / "compress" / "E1-D1-H64" / "compression.jsonl").read_text()
    assert "to-E1-D1-H64" not in small  # the small size's own shape: nothing to prune
    timing = json.loads((root / "latency" / "latency.json").read_text())  # every variant of both, in one process
    small_variants = [json.loads(line)["variant"] for line in small.splitlines()]
    expected = [("E1-D1-H64", name) for name in small_variants] + [("E1-D1-H128", row["variant"]) for row in large]
    assert [(row["grid"], row["variant"]) for row in timing["rows"]] == expected
    report = (root / "report.md").read_text()
    assert "Every variant of every size was loaded into one process and timed in turn" in report
    assert "| E1-D1-H128 → E1-D1-H64, to-E1-D1-H64-fp32 | distilled |" in report
    assert "BLEU vs small dense [95 % paired bootstrap] |" in report
    equal_latency = report.split("## (c)")[1]  # the larger size's best against the small dense, with its interval
    assert re.search(r"\| [+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \|", equal_latency), equal_latency
    timed = {row["variant"]: row["latency_ms"] for row in timing["rows"] if row["grid"] == "E1-D1-H128"}
    best = max(large, key=lambda row: (row["bleu"], -timed[row["variant"]]))  # chosen by the side-by-side timings
    release = json.loads((root / "release" / "release.json").read_text())
    assert [entry["repo_id"] for entry in release] == [
        "study-test/tbc-E1-D1-H64-en-fr",
        f"study-test/tbc-E1-D1-H128-en-fr-{best['variant']}",
    ]
    released = root / "release" / f"tbc-E1-D1-H128-en-fr-{best['variant']}"
    card = (released / "README.md").read_text()
    assert "## Compression" in card and f"| this model | {best['bleu']:.2f} | {best['chrf']:.2f} |" in card
    assert f"{best['latency_ms']:.1f} | {best['size_bytes'] / 1e6:.2f} |" in card and "beam 2" in card
    assert str(tmp_path) not in card
    record = json.loads((released / "hf_tbc_record.json").read_text())
    assert record["compression"]["variant"] == best["variant"] and "base_model" not in record["compression"]
    if best["method"].startswith("onnx"):
        from hf_tbc import OnnxModelForSeq2SeqLM

        assert "OnnxModelForSeq2SeqLM.from_pretrained" in card
        assert OnnxModelForSeq2SeqLM.from_pretrained(released).generation_config.num_beams == 2
    elif best["method"] == "torch-int8":
        from hf_tbc import QuantizedModelForSeq2SeqLM

        assert "QuantizedModelForSeq2SeqLM.from_pretrained" in card
        assert QuantizedModelForSeq2SeqLM.from_pretrained(released).generation_config.num_beams == 2
    else:
        assert AutoModelForSeq2SeqLM.from_pretrained(released).config.d_model == 128
    from hf_tbc.tasks.translation.card import render_card
    from hf_tbc.tasks.translation.release import load_variant_records

    onnx = load_variant_records(root / "compress" / "E1-D1-H128" / "structured50-onnx-int8")
    onnx.repo_id = "study-test/onnx"
    onnx_card = str(render_card(onnx.run, "word-pairs", "en-fr", "validation", variant=onnx))
    assert "OnnxModelForSeq2SeqLM.from_pretrained" in onnx_card and "library_name: onnx" in onnx_card
    assert "quantized to int8 by ONNX Runtime" in onnx_card and "QuantizedModelForSeq2SeqLM" not in onnx_card
    shaped = load_variant_records(root / "compress" / "E1-D1-H128" / "to-E1-D1-H64-fp32")
    shaped.repo_id, shaped.parent_repo_id = "study-test/shaped", "study-test/tbc-E1-D1-H128-en-fr"
    shaped_card = str(render_card(shaped.run, "word-pairs", "en-fr", "validation", variant=shaped))
    assert "base_model: study-test/tbc-E1-D1-H128-en-fr" in shaped_card and "distilled" in shaped_card
    assert "(E1-D1-H128 pruned to E1-D1-H64)" in shaped_card and "Pruned to the shape of E1-D1-H64" in shaped_card
    assert "1 encoder and 1 decoder layers, hidden 64, 1 attention heads" in shaped_card
    assert "learning from the dense model's next-token distributions" in shaped_card
    assert AutoModelForSeq2SeqLM.from_pretrained(shaped.folder).config.d_model == 64
    report = (root / "report.md").read_text()
    assert "## (c) At equal latency" in report and (root / "bleu_vs_latency.png").stat().st_size > 10_000


def test_the_unigram_line_is_the_smoothed_loss_of_predicting_target_words_from_their_frequencies():
    from datasets import Dataset

    from hf_tbc.tasks.translation.data import unigram_loss

    train = Dataset.from_dict({"labels": [[1, 2, 2, 3], [2, 2]]})
    validation = Dataset.from_dict({"labels": [[2, 3]]})
    frequency = np.array([1, 2, 5, 2]) / 10  # the training counts, add-one smoothed
    assert unigram_loss(train, validation, 4) == pytest.approx(-(np.log(0.5) + np.log(0.2)) / 2)
    smoothed = np.log(0.9 * frequency + 0.1 / 4)  # the best source-blind prediction under label smoothing 0.1
    expected = 0.9 * -(smoothed[2] + smoothed[3]) / 2 - 0.1 * smoothed.mean()
    assert unigram_loss(train, validation, 4, 0.1) == pytest.approx(expected)
