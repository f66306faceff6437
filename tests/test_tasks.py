"""The Task interface: a new task is one Task and one registry line, and the study, the advisor, compress.py and
release.py each find it through the registry, without a line of theirs naming it."""

import json
from pathlib import Path

import pytest

from hf_tbc.errors import UsageError
from hf_tbc.release.plan import ReleaseArguments, ReleaseItem
from hf_tbc.tasks import registry
from hf_tbc.tasks.mlm.arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from hf_tbc.tasks.task import Task

# a stage that writes the record the toy's stage is complete with
WRITE_RECORD = (
    "import json, pathlib, sys; out = pathlib.Path(sys.argv[sys.argv.index('--output_dir') + 1]); "
    "out.mkdir(parents=True, exist_ok=True); (out / 'toy.json').write_text(json.dumps({'argv': sys.argv[1:]}))"
)


def toy_train(model_args, data_args, training_args) -> dict:
    """A probe of a size whose loss falls as a power law of its steps; L2-H64 makes twice the steps of L2-H32 per
    second, with a lower floor, so it ends ahead at any budget."""
    width = int(model_args.model_size.split("-H")[1])
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    probe_s, steps_per_s = float(training_args.stop_after), 10.0 * width / 32
    rows = []
    for step in range(1, int(probe_s * steps_per_s) + 1):
        loss = 2.0 - 0.3 * (width / 32) + 6.0 * step**-0.4
        row = {"step": step, "train_s": step / steps_per_s, "elapsed_s": step / steps_per_s, "loss": loss, "lr": 1e-3}
        if step % 10 == 0:
            row["eval_loss"] = loss + 0.05
        rows.append(row)
    (out / "curve.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    record = {
        "stop_reason": "stop_after",
        "steps": len(rows),
        "train_s": rows[-1]["train_s"],
        "time_budget_s": training_args.time_budget_seconds,
        "stop_after_s": probe_s,
        "last_eval_loss": rows[-1]["loss"] + 0.05,
        "parameters": 1000 * width,
        "unigram_loss": 6.5,
        "checkpoint": str(out / f"checkpoint-{len(rows)}"),
    }
    (out / "run_summary.json").write_text(json.dumps(record))
    return record


def toy_stages(config, size, launcher, python):
    return [("toy-train", config.stage_dir("toy-train", size), [*python, "-c", WRITE_RECORD, "--size", size])]


def toy_report(config, rows):
    path = config.root / "report.md"
    path.write_text("".join(f"- {size}\n" for size in config.sizes))
    return path


def toy_release_items(args, folders, namespace):
    return [
        ReleaseItem(f"{namespace}/toy-{Path(folder).name}", Path(folder), None, {}, [], {}, "") for folder in folders
    ]


TOY = Task(
    name="toy",
    recipe="run_mlm.py",
    arguments=(ModelArguments, DataTrainingArguments, PretrainingArguments),
    train=toy_train,
    check_size=lambda size: size if size.startswith("T") else pytest.fail(f"unknown size {size}"),
    loss="toy loss",
    compresses=lambda config: getattr(config, "model_type", None) == "toy",
    compress=lambda *args: "compressed",
    release_items=toy_release_items,
    sections=("toy",),
    stage_records={"toy-train": "toy.json"},
    example="tiny.yaml",
    plan=lambda config: [],
    stages=toy_stages,
    release_options=lambda config: {},
    write_report=toy_report,
    advised_stage="toy-train",
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.TASKS, "toy", TOY)  # the one registry line a new task adds
    return TOY


def test_the_advisor_finds_a_registered_task_and_compares_its_sizes(toy, tmp_path):
    from hf_tbc.advise import AdviceArguments
    from hf_tbc.advise.run import advise

    assert registry.advised_task(["--task", "toy"]) is toy
    flags = tmp_path / "flags.yaml"
    flags.write_text("task: toy\n")
    assert registry.advised_task([str(flags)]) is toy
    advice = advise(
        toy,
        ModelArguments(),
        DataTrainingArguments(),
        PretrainingArguments(output_dir=str(tmp_path / "advice"), time_budget="2m"),
        AdviceArguments(task="toy", model_sizes="L2-H32,L2-H64", probe_budget="12s"),
    )
    assert advice["task"] == "toy" and advice["loss"] == "toy loss"
    assert set(advice["forecasts"]) == {"L2-H32", "L2-H64"} and advice["recommended_size"] == "L2-H64"
    assert (tmp_path / "advice" / "probes" / "L2-H64" / "curve.jsonl").is_file()


def test_a_task_without_a_loss_is_refused_by_the_advisor_in_one_line(toy):
    with pytest.raises(
        UsageError, match="--task classification: the advisor compares sizes for mlm or translation or toy"
    ):
        registry.advised_task(["--task", "classification"])


def test_the_study_runs_a_registered_tasks_sections_stages_and_report(toy, tmp_path):
    from hf_tbc.study import StudyConfig, run_stages

    config_file = tmp_path / "toy.yaml"
    config_file.write_text(
        f"name: toy\ntask: toy\noutput_dir: {tmp_path / 'study'}\nsizes: [T1, T2]\nadvisor: false\n"
        "toy: {time_budget: 1m, train_file: '{data_dir}/toy.txt'}\n"
    )
    config = StudyConfig.from_yaml(str(config_file), data_dir="/data")
    assert config.study_task is toy and config.section("toy")["train_file"] == "/data/toy.txt"
    assert config.time_budget == "1m"
    assert run_stages(config) == {"ran": ["toy-train T1", "toy-train T2"], "skipped": []}
    assert run_stages(config) == {"ran": [], "skipped": ["toy-train T1", "toy-train T2"]}  # complete: skipped
    record = json.loads((tmp_path / "study" / "toy-train" / "T2" / "toy.json").read_text())
    assert record["argv"][:2] == ["--size", "T2"]
    assert toy.write_report(config, None).read_text() == "- T1\n- T2\n"
    stage, folder, command = toy.advice(config, ["launch"])
    assert (stage, folder) == ("advise", tmp_path / "study" / "advice")
    assert command[2:6] == ["--task", "toy", "--model_sizes", "T1,T2"] and command[-2:] == [
        "--train_file",
        "/data/toy.txt",
    ]
    config_file.write_text(config_file.read_text().replace("toy: {", "pretraining: {"))
    with pytest.raises(UsageError, match="lacks toy"):
        StudyConfig.from_yaml(str(config_file), data_dir="/data")


def test_compress_and_release_route_a_registered_tasks_models_and_variants_to_it(toy, tmp_path):
    from transformers import PretrainedConfig

    toy_config = PretrainedConfig()
    toy_config.model_type = "toy"
    assert registry.task_of_model(toy_config) is toy
    assert registry.task_of_model(PretrainedConfig(is_encoder_decoder=True)).name == "translation"
    assert registry.task_of_model(PretrainedConfig(architectures=["BertForMaskedLM"])).name == "classification"
    grid = tmp_path / "grid"
    (grid / "dense-fp32").mkdir(parents=True)
    (grid / "compression.jsonl").write_text(json.dumps({"variant": "dense-fp32", "task": "toy"}) + "\n")
    assert registry.task_of_variant(grid / "dense-fp32") is toy
    items = registry.plan_release(
        ReleaseArguments(output_dir=str(tmp_path), variants=[str(grid / "dense-fp32")]), "org"
    )
    assert [item.repo_id for item in items] == ["org/toy-dense-fp32"]


def test_every_registered_task_says_what_each_caller_asks_of_it():
    import yaml

    from hf_tbc.cli import recipes_folder

    for name, task in registry.TASKS.items():
        assert task.name == name and (recipes_folder() / task.recipe).is_file()
        assert task.sections or task.compress or task.loss, name
        if task.sections:  # a study of it: its example config is of this task and holds its budgeted section
            assert task.stages and task.plan and task.release_options and task.write_report
            example = yaml.safe_load((recipes_folder() / "configs" / task.example).read_text())
            assert example.get("task", "mlm") == name and task.sections[0] in example
