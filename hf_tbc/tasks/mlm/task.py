"""Masked-LM pretraining as a task: the sizes, the advisor's loss, and the study (pretrain every size, finetune each
on a classification task, compress each, release the small dense baseline and the best variant under the limit)."""

from __future__ import annotations

from ..task import Stage, Task, as_flags, script
from .arguments import DataTrainingArguments, ModelArguments, PretrainingArguments
from .model import get_model_size


def _train(model_args, data_args, training_args) -> dict:
    from .train import pretrain

    return pretrain(model_args, data_args, training_args)


def _plan(config) -> list[dict]:
    from .plan import plan

    section = config.section("pretraining")
    return plan(
        config.sizes,
        section["time_budget"],
        int(TASK.setting(section, "per_device_train_batch_size")),
        int(TASK.setting(section, "block_size")),
        int(TASK.setting(section, "vocab_size")),
        architecture=TASK.setting(section, "architecture"),
        sparse_prediction=bool(TASK.setting(section, "sparse_prediction")),
        bf16=bool(TASK.setting(section, "bf16")),
        mlm_probability=float(TASK.setting(section, "mlm_probability")),
    )


def _stages(config, size: str, launcher: list[str], python: list[str]) -> list[Stage]:
    from ..classification.task import TASK as CLASSIFICATION

    pretrained, finetuned, compressed = (
        config.stage_dir(stage, size) for stage in ("pretrain", "finetune", "compress")
    )
    return [
        (
            "pretrain",
            pretrained,
            TASK.recipe_command(launcher, "--model_size", size, *as_flags(config.section("pretraining"))),
        ),
        (
            "finetune",
            finetuned,
            CLASSIFICATION.recipe_command(
                launcher, "--model_name_or_path", str(pretrained), *as_flags(config.section("finetuning"))
            ),
        ),
        (
            "compress",
            compressed,
            [
                *python,
                script("compress.py"),
                "--model_name_or_path",
                str(finetuned),
                *as_flags(config.section("compression")),
            ],
        ),
    ]


def _release_options(config) -> dict:
    return {
        "compression_dirs": [str(config.stage_dir("compress", size)) for size in config.sizes],
        "baseline_dirs": [str(config.stage_dir("compress", config.sizes[0]))],
    }


def _write_report(config, rows):
    from .report import write_report

    return write_report(config, rows)


TASK = Task(
    name="mlm",
    recipe="run_mlm.py",
    arguments=(ModelArguments, DataTrainingArguments, PretrainingArguments),
    train=_train,
    check_size=get_model_size,
    loss="MLM loss",
    sections=("pretraining", "finetuning", "compression"),
    stage_records={"pretrain": "run_summary.json", "finetune": "eval_results.json", "compress": "compression.jsonl"},
    example="cpu_demo.yaml",
    plan=_plan,
    stages=_stages,
    release_options=_release_options,
    write_report=_write_report,
    advised_stage="pretrain",
)
