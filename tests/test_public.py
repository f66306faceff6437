"""What a Hub folder may hold, and the scan for strings of this machine."""

import json

import pytest

from hf_tbc.release.leaks import LocalStrings, copy_model_files, public_names, public_sources, scan


def test_only_the_files_a_model_user_needs_are_copied(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.onnx",
        "quanto_qmap.json",
        "run_summary.json",
        "eval_results.json",
        "curve.jsonl",
        "translations.tsv",
        "loss_vs_time.png",
        "training_args.bin",
    ):
        (run / name).write_text("{}")
    (run / "checkpoint-10").mkdir()
    (run / "checkpoint-10" / "model.safetensors").write_text("{}")
    copied = copy_model_files(run, tmp_path / "hub")
    assert copied == sorted(
        (
            "config.json generation_config.json model.onnx model.safetensors quanto_qmap.json tokenizer.json "
            "tokenizer_config.json"
        ).split()
    )
    assert sorted(path.name for path in (tmp_path / "hub").iterdir()) == copied
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    with pytest.raises(ValueError, match="holds no model files"):
        copy_model_files(empty, tmp_path / "x")


def test_data_sources_become_hub_ids_or_file_names(tmp_path):
    (tmp_path / "client-x").mkdir()
    (tmp_path / "client-x" / "train.tsv").write_text("a\n")
    local = str(tmp_path / "client-x" / "train.tsv")
    assert public_sources(f"{local},../elsewhere/dev.tsv") == ["train.tsv", "dev.tsv"]
    assert public_sources("nyu-mll/glue/sst2") == ["nyu-mll/glue/sst2"] and public_sources(None) == []
    assert public_sources(["wikitext", local]) == ["wikitext", "train.tsv"]


def _local(tmp_path) -> LocalStrings:
    local = LocalStrings(public=public_names(["sst2", "L2-H128", "nyu-mll/glue"]))
    local.add_file(tmp_path / "acme-corp" / "train.tsv", "--train_file")
    local.add_folder(tmp_path / "runs" / "sst2", "a run")
    local.add_folder(tmp_path / "F", "a data folder")
    return local


def test_paths_match_anywhere_and_names_as_whole_words_unless_public(tmp_path):
    local = _local(tmp_path)
    assert local.find(f"trained on {tmp_path}/acme-corp/train.tsv")[1] == "a local path"
    assert local.find(f'"name_or_path": "{tmp_path}/runs/sst2"')[0] == f"{tmp_path}/runs/sst2"
    assert local.find("a text classifier for Acme-Corp reviews")[0] == "acme-corp"  # the folder's name, any case
    assert local.find("acme-corporate") is None and local.find("sst2 on nyu-mll/glue") is None  # not a word; public
    assert local.find("a text classifier for F") is None  # a one-letter word is not looked for in running text ...
    assert local.find("org/tbc-L2-H128-F-dense-fp32", in_text=False)[0] == "F"  # ... but it is in a repo id
    assert local.find(f"{tmp_path}/runsX") is None  # another folder that starts the same


def test_the_scan_names_the_file_and_the_string_and_reads_binaries_for_paths(tmp_path):
    local = _local(tmp_path)
    repo = tmp_path / "hub" / "repo"
    repo.mkdir(parents=True)
    (repo / "README.md").write_text("# a model\n")
    (repo / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"F": 1, "acme": 2}}}))  # tokens are data
    scan({"org/model": repo}, local)
    (repo / "model.onnx").write_bytes(b"\x08\x07\x00\x00" + f"{tmp_path}/acme-corp/train.tsv".encode() + b"\x00\x12")
    with pytest.raises(ValueError, match=r"model.onnx would publish .*acme-corp/train.tsv.*a local path"):
        scan({"org/model": repo}, local)
    (repo / "model.onnx").unlink()
    (repo / "tokenizer_config.json").write_text(json.dumps({"name_or_path": f"{tmp_path}/runs/sst2"}))
    with pytest.raises(ValueError, match=r"tokenizer_config.json would publish"):
        scan({"org/model": repo}, local)
    (repo / "tokenizer_config.json").unlink()
    with pytest.raises(ValueError, match=r"repo id org/tbc-acme-corp-sst2 holds 'acme-corp'.*--task_name"):
        scan({"org/tbc-acme-corp-sst2": repo}, local)


def test_the_home_folder_and_host_name_are_local_strings(monkeypatch, tmp_path):
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "gpu-node-17.cluster.internal")
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "alice"))
    local = LocalStrings()
    local.add_machine()
    assert local.find(f"cache in {tmp_path}/home/alice/.cache")[1] == "a local path"
    assert local.find("trained on gpu-node-17 in a day")[1] == "this machine's host name"
