"""Release: cards from real records, dry runs, and pushes through the real huggingface_hub client to a local test
Hub."""

import json
import os
import subprocess
import sys

import pytest
from huggingface_hub import ModelCard

from hf_tbc.compress.arguments import CompressionArguments
from hf_tbc.compress.records import read_records
from hf_tbc.compress.variants import variant_kind
from hf_tbc.errors import UsageError
from hf_tbc.release.plan import ReleaseArguments, check_repo_id
from hf_tbc.release.selection import best_under
from hf_tbc.tasks.classification.arguments import (
    ClassificationDataArguments,
    ClassificationModelArguments,
    FinetuningArguments,
)
from hf_tbc.tasks.classification.card import card_data, corpus_description, render_card, stored_sparse
from hf_tbc.tasks.classification.compress import compress_grid
from hf_tbc.tasks.classification.release import Variant, load_variant_records
from hf_tbc.tasks.classification.train import finetune
from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from hf_tbc.tasks.mlm.train import pretrain
from tests.conftest import REPO
from tests.hub_server import TOKEN, FakeHub
from tests.test_classification import write_table

RELEASE = str(REPO / "recipes" / "release.py")
CARD = ["--card_dataset", "hf-tbc/docs-pairs", "--card_dataset_config", "default", "--card_dataset_split", "validation"]


@pytest.fixture(scope="session")  # one chain for every module that uses it (test_packaging too)
def chain(tmp_path_factory):
    """pretrain -> finetune -> compress on tiny models, through the library, so every record is a real measurement."""
    from hf_tbc.tasks.mlm.corpus import default_corpus

    root = tmp_path_factory.mktemp("chain")
    lines = default_corpus().read_text().splitlines()[:1200]
    (root / "text.txt").write_text("\n".join(lines) + "\n")
    common = dict(disable_tqdm=True, per_device_train_batch_size=16, logging_steps=5, report_to="none")
    pretrain(
        ModelArguments(model_size="L2-H32", vocab_size=400),
        DataTrainingArguments(train_file=str(root / "text.txt"), block_size=32),
        PretrainingArguments(output_dir=str(root / "pretrained"), time_budget="3s", **common),
    )
    rows = [
        (line, line if i % 2 else lines[(i * 7 + 3) % 400], "yes" if i % 2 else "no")
        for i, line in enumerate(lines[:400])
    ]
    data = root / "pairs"
    data.mkdir()
    train = write_table(data / "train.csv", ["premise", "hypothesis", "label"], rows[:320])
    dev = write_table(data / "dev.csv", ["premise", "hypothesis", "label"], rows[320:])
    pair = dict(text_column="premise", text_pair_column="hypothesis", max_seq_length=64)
    finetune(
        ClassificationModelArguments(model_name_or_path=str(root / "pretrained")),
        ClassificationDataArguments(train_file=train, validation_file=dev, **pair),
        FinetuningArguments(output_dir=str(root / "finetuned"), time_budget="3s", learning_rate=1e-3, **common),
    )
    from hf_tbc.tasks.classification.data import load_classification_data

    validation = load_classification_data(
        ClassificationDataArguments(validation_file=dev, **pair), label_names=["no", "yes"]
    )[0]
    compress_grid(
        CompressionArguments(
            model_name_or_path=str(root / "finetuned"),
            output_dir=str(root / "compressed"),
            sparsities="0,0.5",
            quantization="none,onnx-int8,quanto-int8",
            latency_runs=2,
            latency_batch_size=8,
            pruning_method="unstructured,structured",
        ),
        validation["validation"],
    )
    return {"root": root, "compressed": root / "compressed", "dev": dev, "validation": validation["validation"]}


def run_release(*arguments, env=None, hub=None):
    environment = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    environment.pop("HF_TOKEN", None)
    if hub is not None:
        environment.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, RELEASE, *arguments], capture_output=True, text=True, timeout=300, env=environment
    )


@pytest.mark.slow
def test_dry_run_writes_parsing_cards_from_the_records_and_loadable_folders(tmp_path, chain):
    compressed = chain["compressed"]
    out = tmp_path / "release"
    done = run_release(
        "--variants",
        str(compressed / "pruned50-onnx-int8"),
        str(compressed / "dense-quanto-int8"),
        str(compressed / "pruned50-fp32"),
        str(compressed / "structured50-onnx-int8"),
        "--dry_run",
        "--hub_organization",
        "org",
        *CARD,
        "--output_dir",
        str(out),
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert TOKEN not in done.stdout + done.stderr
    rows = {row["variant"]: row for row in read_records(compressed)}
    folders = sorted(path.name for path in out.iterdir() if path.is_dir())
    names = ["dense-fp32", "dense-quanto-int8", "pruned50-fp32", "pruned50-onnx-int8", "structured50-onnx-int8"]
    # the dense parent came along
    assert folders == sorted(f"tbc-L2-H32-docs-pairs-{name}" for name in names)
    for name in names:
        folder = out / f"tbc-L2-H32-docs-pairs-{name}"
        card = ModelCard.load(folder / "README.md")
        data = card.data.to_dict()
        for key in ("license", "library_name", "pipeline_tag", "tags", "datasets", "model-index"):
            assert data.get(key), (name, key)
        assert "train-large-then-compress" in data["tags"]
        result = card.data.eval_results[0]
        assert result.metric_type == "accuracy" and result.metric_value == round(rows[name]["accuracy"], 4)
        assert (result.dataset_type, result.dataset_config, result.dataset_split) == (
            "hf-tbc/docs-pairs",
            "default",
            "validation",
        )
        assert data["library_name"] == {"onnx": "onnx", "quanto": "hf-tbc"}.get(variant_kind(folder), "transformers")
        if name == "dense-fp32":
            assert card.data.base_model is None
        else:
            assert card.data.base_model == "org/tbc-L2-H32-docs-pairs-dense-fp32"
        loader = {
            "pruned50-onnx-int8": "OnnxModelForSequenceClassification",
            "dense-quanto-int8": "QuantizedModelForSequenceClassification",
            "structured50-onnx-int8": "OnnxModelForSequenceClassification",
        }
        assert loader.get(name, "AutoModelForSequenceClassification") in card.text
        assert {"onnx-int8": "onnx", "quanto-int8": "quanto"}.get(name.split("-", 1)[1], "pytorch") in data["tags"]
        assert ("magnitude-pruning" in data["tags"]) == name.startswith("pruned")
        assert ("structured-pruning" in data["tags"]) == name.startswith("structured")
        assert ("Structured pruning" in card.text) == name.startswith("structured")
        assert ("sparse" in data["tags"]) == (name.startswith("pruned") and rows[name]["sparsity"] > 0.45)
        assert f"{rows[name]['size_bytes'] / 1e6:.2f} MB" in card.text
    summary = json.loads((out / "release.json").read_text())
    assert {entry["status"] for entry in summary} == {"written"}

    from transformers import AutoTokenizer

    from hf_tbc.compress.evaluation import accuracy
    from hf_tbc.compress.variants import load_variant

    for name in names:
        folder = out / f"tbc-L2-H32-docs-pairs-{name}"
        model = load_variant(folder)
        assert accuracy(model, chain["validation"], AutoTokenizer.from_pretrained(folder)) == pytest.approx(
            rows[name]["accuracy"]
        )


LOAD_BACK = """
import json, sys, torch
from transformers import AutoTokenizer
from hf_tbc.tasks.classification.arguments import ClassificationDataArguments
from hf_tbc.tasks.classification.data import load_classification_data
from hf_tbc.compress.evaluation import accuracy
repo_id, kind, dev = sys.argv[1:4]
if kind == "onnx":
    from hf_tbc import OnnxModelForSequenceClassification as Loader
elif kind == "quanto":
    from hf_tbc.compress import QuantizedModelForSequenceClassification as Loader
else:
    from transformers import AutoModelForSequenceClassification as Loader
model = Loader.from_pretrained(repo_id)
args = ClassificationDataArguments(
    validation_file=dev, text_column="premise", text_pair_column="hypothesis", max_seq_length=64
)
validation = load_classification_data(args, label_names=["no", "yes"])[0]["validation"]
print(json.dumps({"accuracy": accuracy(model, validation, AutoTokenizer.from_pretrained(repo_id))}))
"""


@pytest.mark.slow
def test_push_to_a_test_hub_loads_back_with_the_cards_accuracy_and_repush_is_idempotent(tmp_path, chain):
    compressed = chain["compressed"]
    env = {"HF_HOME": str(tmp_path / "hf")}
    with FakeHub() as hub:
        arguments = [
            "--variants",
            str(compressed / "pruned50-onnx-int8"),
            str(compressed / "dense-quanto-int8"),
            "--hub_organization",
            "org",
            "--output_dir",
            str(tmp_path / "release"),
            *CARD,
        ]
        done = run_release(*arguments, env=env, hub=hub)
        assert done.returncode == 0, done.stderr[-3000:]
        assert TOKEN not in done.stdout + done.stderr
        assert sorted(hub.repos) == [
            f"org/tbc-L2-H32-docs-pairs-{n}" for n in ("dense-fp32", "dense-quanto-int8", "pruned50-onnx-int8")
        ]
        commits = {repo: len(state["commits"]) for repo, state in hub.repos.items()}
        assert set(commits.values()) == {2}  # the repo's creation, then one commit with every file
        assert hub.repos["org/tbc-L2-H32-docs-pairs-pruned50-onnx-int8"]["messages"][-1].startswith(
            "Release pruned50-onnx-int8"
        )

        for name, kind in (("dense-fp32", "pytorch"), ("pruned50-onnx-int8", "onnx"), ("dense-quanto-int8", "quanto")):
            repo_id = f"org/tbc-L2-H32-docs-pairs-{name}"
            card = ModelCard(hub.repos[repo_id]["files"]["README.md"].decode())
            loaded = subprocess.run(
                [sys.executable, "-c", LOAD_BACK, repo_id, kind, chain["dev"]],
                capture_output=True,
                text=True,
                timeout=300,
                env={
                    **os.environ,
                    "HF_HUB_OFFLINE": "0",
                    "HF_ENDPOINT": hub.url,
                    "HF_HOME": str(tmp_path / f"load-{name}"),
                },
            )
            assert loaded.returncode == 0, loaded.stderr[-3000:]
            measured = json.loads(loaded.stdout.strip().splitlines()[-1])["accuracy"]
            assert round(measured, 4) == card.data.eval_results[0].metric_value

        again = run_release(*arguments, env=env, hub=hub)
        assert again.returncode == 0, again.stderr[-3000:]
        assert {repo: len(state["commits"]) for repo, state in hub.repos.items()} == commits
        assert again.stdout.count("unchanged") >= 3

        victim = "org/tbc-L2-H32-docs-pairs-dense-fp32"
        hub.repos[victim]["files"]["notes.txt"] = b"someone else's file"
        refused = run_release(*arguments, env=env, hub=hub)
        assert refused.returncode == 2 and "already exists with other content: pass --overwrite" in refused.stderr
        assert b"someone else's file" == hub.repos[victim]["files"]["notes.txt"]
        replaced = run_release(*arguments, "--overwrite", env=env, hub=hub)
        assert replaced.returncode == 0, replaced.stderr[-3000:]
        assert "notes.txt" not in hub.repos[victim]["files"]


@pytest.mark.slow
def test_network_errors_are_retried_then_reported_without_claiming_a_push(tmp_path, chain):
    variant = str(chain["compressed"] / "dense-fp32")
    with FakeHub() as hub:
        hub.fail_commits = 1
        flaky = run_release(
            "--variants",
            variant,
            "--hub_organization",
            "org",
            "--output_dir",
            str(tmp_path / "a"),
            *CARD,
            env={"HF_HOME": str(tmp_path / "hf")},
            hub=hub,
        )
        assert flaky.returncode == 0, flaky.stderr[-3000:]
        assert len(hub.repos["org/tbc-L2-H32-docs-pairs-dense-fp32"]["commits"]) == 2
    with FakeHub() as hub:
        hub.fail_commits = 10
        down = run_release(
            "--variants",
            variant,
            "--hub_organization",
            "org",
            "--output_dir",
            str(tmp_path / "b"),
            *CARD,
            env={"HF_HOME": str(tmp_path / "hf")},
            hub=hub,
        )
        assert down.returncode != 0
        assert "failed after 3 attempts" in down.stderr and "nothing was committed" in down.stderr
        assert hub.repos["org/tbc-L2-H32-docs-pairs-dense-fp32"]["files"].keys() == {".gitattributes"}
        report = json.loads((tmp_path / "b" / "release.json").read_text())
        assert [entry["status"] for entry in report] == ["failed"]
        assert "0 of 1 repos landed" in down.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, message",
    [
        ("no_token", "no Hugging Face token"),
        ("missing_records", "missing record"),
        ("bad_name", "invalid repo id"),
        ("no_card_dataset", "whose folder name stays private: name their Hub dataset for the card with --card_dataset"),
        ("nothing", "nothing to release"),
    ],
)
def test_bad_release_input_is_one_line_and_non_zero(tmp_path, chain, case, message):
    variant = str(chain["compressed"] / "dense-fp32")
    arguments = {
        "no_token": ["--variants", variant, "--hub_organization", "org", *CARD],
        "missing_records": [
            "--variants",
            str(chain["root"] / "finetuned"),
            "--dry_run",
            "--hub_organization",
            "org",
            *CARD,
        ],
        "bad_name": ["--variants", variant, "--dry_run", "--hub_organization", "org", "--repo_prefix=--bad--", *CARD],
        "no_card_dataset": ["--variants", variant, "--dry_run", "--hub_organization", "org"],
        "nothing": ["--dry_run", "--hub_organization", "org"],
    }[case]
    out = tmp_path / "release"
    done = run_release(*arguments, "--output_dir", str(out), env={"HF_HOME": str(tmp_path / "empty-home")})
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
    assert not out.exists()


@pytest.mark.slow
def test_release_selects_by_latency_and_skips_a_base_model_with_nothing_under_the_limit(tmp_path, chain):
    rows = read_records(chain["compressed"])
    structured = next(row for row in rows if row["variant"] == "structured50-fp32")
    dense = next(row for row in rows if row["variant"] == "dense-fp32")
    assert (
        structured["nonzero_parameters"] < dense["nonzero_parameters"]
        and structured["size_bytes"] < dense["size_bytes"]
    )
    limit = min(row["latency_ms"] for row in rows) * 0.5  # nothing is this fast
    fast = max(row["latency_ms"] for row in rows) * 2  # everything is
    out = tmp_path / "release"
    done = run_release(
        "--compression_dirs",
        str(chain["compressed"]),
        str(chain["compressed"]),
        "--select_by",
        "latency",
        "--limit",
        str(fast),
        "--dry_run",
        "--hub_organization",
        "org",
        *CARD,
        "--output_dir",
        str(out),
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    best = max(rows, key=lambda row: (row["accuracy"], -row["latency_ms"]))
    assert any(path.name.endswith(best["variant"]) for path in out.iterdir())
    skipped = run_release(
        "--compression_dirs",
        str(chain["compressed"]),
        "--select_by",
        "latency",
        "--limit",
        str(limit),
        "--variants",
        str(chain["compressed"] / "dense-fp32"),
        "--dry_run",
        "--hub_organization",
        "org",
        *CARD,
        "--output_dir",
        str(tmp_path / "skipped"),
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert f"skipped {chain['compressed']}: no variant costs at most" in skipped.stderr
    assert sorted(path.name for path in (tmp_path / "skipped").iterdir() if path.is_dir()) == [
        "tbc-L2-H32-docs-pairs-dense-fp32"
    ]


def test_selection_takes_the_most_accurate_variant_under_the_limit_by_each_cost():
    rows = [
        {"variant": "a", "accuracy": 0.8, "latency_ms": 10.0, "size_bytes": 4e6, "nonzero_parameters": 900},
        {"variant": "b", "accuracy": 0.9, "latency_ms": 30.0, "size_bytes": 2e6, "nonzero_parameters": 1000},
        {"variant": "c", "accuracy": 0.9, "latency_ms": 20.0, "size_bytes": 3e6, "nonzero_parameters": 500},
    ]
    assert best_under(rows, "latency", 25)["variant"] == "c" and best_under(rows, "latency", 15)["variant"] == "a"
    assert (
        best_under(rows, "size", 2.5)["variant"] == "b"
        and best_under(rows, "nonzero_parameters", 950)["variant"] == "c"
    )
    assert best_under(rows, "latency", 5) is None and best_under(rows, "latency")["variant"] == "c"
    with pytest.raises(ValueError, match="--select_by 'flops' is unknown"):
        best_under(rows, "flops", 1)
    with pytest.raises(ValueError, match="either --max_size_mb or --select_by/--limit"):
        ReleaseArguments(output_dir="o", max_size_mb=5, limit=3)
    assert (ReleaseArguments(output_dir="o", max_size_mb=5).select_by, ReleaseArguments(output_dir="o").select_by) == (
        "size",
        "latency",
    )


def test_selection_by_latency_takes_the_side_by_side_timings_where_they_cover_a_grid(tmp_path, caplog):
    """A study times every variant of every grid in one process; release then chooses by those latencies, as the
    report's equal-latency answer does, not by each grid's own (grids timed one after another)."""
    from hf_tbc.release.selection import read_timings, select_variants

    for grid in ("L4", "L6"):
        (tmp_path / grid).mkdir()
        rows = [
            {"variant": "dense", "accuracy": 0.9, "latency_ms": 30.0, "size_bytes": 4e6},
            {"variant": "pruned", "accuracy": 0.8, "latency_ms": 12.0, "size_bytes": 1e6},
        ]
        (tmp_path / grid / "compression.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    grids = [tmp_path / "L4", tmp_path / "L6"]
    assert select_variants(grids, "latency", 20.0) == [tmp_path / "L4" / "pruned", tmp_path / "L6" / "pruned"]
    timed = [
        {"grid": "L4", "variant": "dense", "latency_ms": 18.0},  # the grid's own run was slow: side by side it fits
        {"grid": "L4", "variant": "pruned", "latency_ms": 9.0},
        {"grid": "L6", "variant": "dense", "latency_ms": 25.0},  # L6's pruned variant was not timed
    ]
    (tmp_path / "latency").mkdir()
    (tmp_path / "latency" / "latency.json").write_text(json.dumps({"rows": timed, "margin": 0.05}))
    timings = read_timings(tmp_path / "latency")
    with caplog.at_level("WARNING"):
        chosen = select_variants(grids, "latency", 20.0, timings)
    assert chosen == [tmp_path / "L4" / "dense", tmp_path / "L6" / "pruned"]  # L6 by its own latencies
    assert "L6: the side-by-side timings miss some of its variants" in caplog.text
    assert select_variants(grids, "size", None, timings) == [tmp_path / "L4" / "dense", tmp_path / "L6" / "dense"]
    assert read_timings(None) is None
    with pytest.raises(UsageError, match=r"--latency_dir .*nowhere holds no latency.json: time the grids there"):
        read_timings(tmp_path / "nowhere")


def test_repo_ids_are_checked_with_the_hubs_own_rules():
    assert check_repo_id("org/tbc-L12-H768-sst2-pruned50-onnx-int8")
    for bad in ("org/", "org/a/b", "org/" + "x" * 97, "org/double--dash", "org/ends.git", "org/-start", "bad org/x"):
        with pytest.raises(ValueError, match="invalid repo id.*--hub_organization or --repo_prefix"):
            check_repo_id(bad)


# -- pushing, in-process against the local test Hub ------------------------------------------------------
@pytest.fixture
def hub():
    with FakeHub() as server:
        yield server


@pytest.fixture
def api(hub, monkeypatch):
    """A real client of the local test Hub (tests run offline: only 127.0.0.1 is let through)."""
    from huggingface_hub import HfApi, constants, utils

    reset = getattr(utils, "reset_sessions", None) or getattr(utils, "close_session")  # huggingface_hub 0.x / 1.x+
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # commit URLs are parsed against it
    reset()
    yield HfApi(endpoint=hub.url, token=TOKEN)
    reset()


@pytest.fixture
def release_folder(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# a card\n")
    (folder / "config.json").write_text('{"model_type": "roberta"}')
    return folder


def _fast_retries(monkeypatch):
    import hf_tbc.release.hub

    monkeypatch.setattr(hf_tbc.release.hub.time, "sleep", lambda seconds: None)


def test_a_rate_limited_commit_is_retried(hub, api, release_folder, monkeypatch):
    from hf_tbc.release.hub import push_folder

    _fast_retries(monkeypatch)
    hub.fail_commits, hub.fail_status = 2, 429
    result = push_folder(api, release_folder, "org/model", "Release")
    assert result.status == "created" and hub.repos["org/model"]["files"]["config.json"] == b'{"model_type": "roberta"}'


def test_a_commit_that_landed_before_its_answer_was_lost_counts_once(hub, api, release_folder, monkeypatch):
    from hf_tbc.release.hub import push_folder

    _fast_retries(monkeypatch)
    hub.drop_commits = 1  # the commit is applied, then the connection drops; the retry meets a moved head
    result = push_folder(api, release_folder, "org/model", "Release")
    assert result.status == "created" and result.commit == hub.repos["org/model"]["commits"][-1]
    assert len(hub.repos["org/model"]["commits"]) == 2  # creation + exactly one commit of ours


def test_a_connection_drop_before_the_commit_is_retried(hub, api, release_folder, monkeypatch):
    from hf_tbc.release.hub import push_folder

    _fast_retries(monkeypatch)
    hub.drop_before_commit = 1
    assert push_folder(api, release_folder, "org/model", "Release").status == "created"
    assert "README.md" in hub.repos["org/model"]["files"]


def test_a_concurrent_push_is_detected_not_clobbered(hub, api, release_folder, monkeypatch):
    import hf_tbc.release.hub
    from hf_tbc.release.hub import push_folder

    push_folder(api, release_folder, "org/model", "Release")
    (release_folder / "config.json").write_text('{"model_type": "roberta", "v": 2}')
    real_remote_files = hf_tbc.release.hub._remote_files

    def someone_pushes_meanwhile(api_, repo_id, revision):
        listed = real_remote_files(api_, repo_id, revision)
        if not hub.repos[repo_id]["files"].get("theirs.txt"):
            hub.commit(repo_id, {"theirs.txt": b"their work"}, [], "their commit")
        return listed

    monkeypatch.setattr(hf_tbc.release.hub, "_remote_files", someone_pushes_meanwhile)
    with pytest.raises(ConnectionError, match="another commit landed first.*nothing of this release was committed"):
        push_folder(api, release_folder, "org/model", "Release v2", overwrite=True)
    assert hub.repos["org/model"]["files"]["theirs.txt"] == b"their work"  # their commit survives
    assert hub.repos["org/model"]["messages"][-1] == "their commit"


def test_private_is_honoured_for_an_existing_repo(hub, api, release_folder):
    from hf_tbc.release.hub import push_folder

    push_folder(api, release_folder, "org/model", "Release")
    assert hub.repos["org/model"]["private"] is False
    assert push_folder(api, release_folder, "org/model", "Release", private=True).status == "unchanged"
    assert hub.repos["org/model"]["private"] is True
    push_folder(api, release_folder, "org/model", "Release")  # without --private: never made public
    assert hub.repos["org/model"]["private"] is True


@pytest.mark.slow
def test_cards_render_for_every_kind_without_the_network(chain):
    for folder in sorted(path for path in chain["compressed"].iterdir() if path.is_dir()):
        variant = load_variant_records(folder)
        variant.repo_id = f"org/{variant.default_repo_name('tbc-', 'docs-pairs')}"
        variant.parent_repo_id = None if variant.row["variant"] == "dense-fp32" else "org/parent"
        card = render_card(variant, "hf-tbc/docs-pairs", None, "validation")
        parsed = ModelCard(str(card))
        assert parsed.data.eval_results[0].metric_value == round(variant.row["accuracy"], 4)
        assert "{{" not in card.text and "| None" not in card.text and "nan" not in card.text


def test_cards_tag_sparse_only_what_is_stored_sparse_and_name_all_training_data(tmp_path):
    row = {
        "variant": "pruned50-quanto-int4",
        "method": "quanto-int4",
        "target_sparsity": 0.5,
        "sparsity": 0.02,
        "accuracy": 0.8,
        "bits": 4,
    }
    assert not stored_sparse(row)  # quanto int4's zero points turned the pruned zeros into small values
    assert stored_sparse({**row, "method": "onnx-int8", "sparsity": 0.5}) and not stored_sparse(
        {**row, "target_sparsity": 0}
    )
    assert not stored_sparse({**row, "method": "onnx-int8", "sparsity": 0.5, "pruning_method": "structured"})
    pretraining = {
        "corpus": "../shared/data/sst2/train.tsv,../shared/data/reviews/books/train.tsv",
        "corpus_files": ["../shared/data/sst2/train.tsv", "../shared/data/reviews/books/train.tsv"],
    }
    assert corpus_description(pretraining) == "2 local text files, not named for this card"  # folder names stay private
    assert (
        corpus_description(pretraining, ["stanfordnlp/sst2", "amazon_polarity"])
        == "stanfordnlp/sst2, amazon_polarity (local copies)"
    )
    assert (
        corpus_description(
            {"corpus": "wikitext", "dataset_name": "wikitext", "dataset_config_name": "wikitext-103-raw-v1"}
        )
        == "wikitext (wikitext-103-raw-v1)"
    )
    assert corpus_description({"corpus": "python3.11-stdlib-docs"}) == "python3.11-stdlib-docs"

    (tmp_path / "quanto_qmap.json").write_text("{}")  # what makes a folder a quanto variant
    variant = Variant(tmp_path, row, {"task": "sst2"}, {"corpus": "wikitext", "dataset_name": "wikitext"})
    variant.repo_id = "org/tbc-L2-H32-sst2-pruned50-quanto-int4"
    data = card_data(variant, "stanfordnlp/sst2", None, "validation", "apache-2.0", ("wikitext",)).to_dict()
    assert data["library_name"] == "hf-tbc"  # quanto variants load through hf_tbc's class
    assert data["datasets"] == ["wikitext", "stanfordnlp/sst2"]
    assert "magnitude-pruning" in data["tags"] and "sparse" not in data["tags"]
    assert "base_model_relation" not in data  # no base_model named: nothing to relate to
    variant.parent_repo_id = "org/tbc-L2-H32-sst2-dense-fp32"
    for bits, relation in ((4, "quantized"), (32, None)):
        variant.row["bits"] = bits
        data = card_data(variant, "stanfordnlp/sst2", None, "validation", "apache-2.0").to_dict()
        assert data["base_model"] == variant.parent_repo_id and data.get("base_model_relation") == relation


# -- what a release publishes, and preflight -------------------------------------------------------------
PUBLIC_FILES = {
    "README.md",
    "hf_tbc_record.json",
    "config.json",
    "model.safetensors",
    "model.onnx",
    "quanto_qmap.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
}  # the tokenizer's files differ between transformers 4.x and 5.x


@pytest.mark.slow
def test_a_release_publishes_model_files_a_card_and_a_record_with_public_names_only(tmp_path, chain):
    """The data sits in a folder named `pairs` under the test's folder: neither may reach a Hub folder; the task's
    public name comes from the card's Hub dataset (nyu-mll/glue sst2), never from that folder."""
    compressed, out = chain["compressed"], tmp_path / "release"
    glue = ["--card_dataset", "nyu-mll/glue", "--card_dataset_config", "sst2"]
    done = run_release(
        "--variants",
        str(compressed / "pruned50-onnx-int8"),
        str(compressed / "dense-quanto-int8"),
        "--dry_run",
        "--hub_organization",
        "org",
        *glue,
        "--output_dir",
        str(out),
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folders = sorted(path for path in out.iterdir() if path.is_dir())
    assert [path.name for path in folders] == [
        f"tbc-L2-H32-sst2-{name}" for name in ("dense-fp32", "dense-quanto-int8", "pruned50-onnx-int8")
    ]
    home = str(__import__("pathlib").Path.home())
    for folder in folders:
        names = {path.name for path in folder.iterdir()}
        assert names <= PUBLIC_FILES and {"README.md", "hf_tbc_record.json", "config.json"} <= names, names
        assert f"{folder.name}  (" in done.stdout or folder.name in done.stdout  # the dry run lists it ...
        for path in folder.iterdir():
            assert f"{path.name} " in done.stdout  # ... file by file
            data = path.read_bytes()
            for local in (str(chain["root"]), home, "/pairs/", "pairs (local"):
                assert local.encode() not in data, (path, local)
        record = json.loads((folder / "hf_tbc_record.json").read_text())
        assert record["finetuning"]["task"] == "sst2" and record["finetuning"]["data"] == ["train.csv"]
        assert record["pretraining"]["corpus"] == ["text.txt"] and record["evaluation"]["dataset"] == "nyu-mll/glue"
        card = ModelCard.load(folder / "README.md")
        assert "sst2" in card.text and "pairs" not in card.text
    listed = json.loads((out / "release.json").read_text())
    assert [file["path"] for file in listed[0]["files"]] == sorted(path.name for path in folders[0].iterdir())


@pytest.mark.slow
def test_a_local_path_left_in_a_model_file_stops_the_release_before_anything_is_written(tmp_path, chain):
    import shutil

    copy = tmp_path / "compressed"
    shutil.copytree(chain["compressed"], copy)
    tokenizer_config = copy / "dense-fp32" / "tokenizer_config.json"
    config = json.loads(tokenizer_config.read_text())
    config["name_or_path"] = str(chain["root"] / "finetuned")  # what some tokenizers save
    tokenizer_config.write_text(json.dumps(config))
    out = tmp_path / "release"
    done = run_release(
        "--variants",
        str(copy / "dense-fp32"),
        "--dry_run",
        "--hub_organization",
        "org",
        *CARD,
        "--output_dir",
        str(out),
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "tokenizer_config.json would publish" in errors[0] and str(chain["root"]) in errors[0]
    assert {path.name for path in tmp_path.iterdir()} - {"hf"} == {"compressed"}  # no output, no staging left


FIVE = ("pruned50-fp32", "structured50-onnx-int8", "dense-quanto-int8", "pruned50-onnx-int8")  # + the dense parent


def _five(chain, tmp_path, *extra):
    return [
        "--variants",
        *(str(chain["compressed"] / name) for name in FIVE),
        "--hub_organization",
        "org",
        *CARD,
        "--output_dir",
        str(tmp_path / "release"),
        *extra,
    ]


def _names(prefix="tbc-"):
    return [f"org/{prefix}L2-H32-docs-pairs-{name}" for name in ("dense-fp32", *FIVE)]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["existing_third", "read_only_token", "not_a_member", "invalid_third"])
def test_a_release_that_cannot_complete_creates_nothing(tmp_path, chain, fault):
    env = {"HF_HOME": str(tmp_path / "hf")}
    with FakeHub() as hub:
        arguments, message = _five(chain, tmp_path), None
        if fault == "existing_third":
            third = _names()[2]
            hub.repos[third] = {
                "files": {".gitattributes": b"", "notes.txt": b"theirs"},
                "commits": ["c0"],
                "messages": ["theirs"],
                "private": False,
            }
            message = f"Hub repo {third} already exists with other content: pass --overwrite"
        elif fault == "read_only_token":
            hub.token_role, message = "read", "the Hugging Face token is read-only"
        elif fault == "not_a_member":
            hub.orgs, message = [], "tester is not a member of the organisation org"
        else:  # a prefix that makes only the longest name, the third, longer than the Hub's 96 characters
            prefix = "p" * (96 - len("tbc-L2-H32-docs-pairs-structured50-onnx-int8") + 4) + "-"
            arguments, message = _five(chain, tmp_path, "--repo_prefix", prefix), "invalid repo id"
            assert len(_names(prefix)[2].split("/")[1]) > 96 >= max(len(n.split("/")[1]) for n in _names(prefix)[:2])
        before = {repo: list(state["commits"]) for repo, state in hub.repos.items()}
        done = run_release(*arguments, env=env, hub=hub)
        assert done.returncode == 2, done.stderr[-3000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
        assert {
            repo: state["commits"] for repo, state in hub.repos.items()
        } == before  # nothing created, nothing committed
        assert not any(
            request.startswith("POST /api/repos/create") or "/commit/" in request for request in hub.requests
        )
        assert not (tmp_path / "release").exists()


@pytest.mark.slow
def test_a_release_cut_off_midway_says_what_landed_and_a_rerun_pushes_exactly_the_rest(tmp_path, chain):
    env = {"HF_HOME": str(tmp_path / "hf")}
    with FakeHub() as hub:
        hub.down_after_commits = 2  # the network goes down after the second repo's commit
        cut = run_release(*_five(chain, tmp_path), env=env, hub=hub)
        assert cut.returncode == 1, cut.stderr[-3000:]
        assert "2 of 5 repos landed" in cut.stderr and "rerun the same command" in cut.stderr
        report = json.loads((tmp_path / "release" / "release.json").read_text())
        assert [entry["status"] for entry in report] == ["created", "created", "failed", "not pushed", "not pushed"]
        landed = {repo for repo, state in hub.repos.items() if "README.md" in state["files"]}
        assert landed == set(_names()[:2])
        first = {repo: list(hub.repos[repo]["commits"]) for repo in landed}

        hub.down_after_commits = None  # the network is back
        rerun = run_release(*_five(chain, tmp_path), env=env, hub=hub)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        report = json.loads((tmp_path / "release" / "release.json").read_text())
        assert [entry["status"] for entry in report] == ["unchanged", "unchanged", "updated", "created", "created"]
        assert {repo: hub.repos[repo]["commits"] for repo in landed} == first  # no second commit where it had landed
        assert all(
            len(hub.repos[repo]["commits"]) == 2 and "README.md" in hub.repos[repo]["files"] for repo in _names()
        )
