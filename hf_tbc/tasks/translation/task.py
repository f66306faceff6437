"""Translation as a task: the encoder-decoder sizes, the advisor's loss, the compression grid of a translation model,
the release of its runs and variants with BLEU cards, and the study (train every size, compress each, release the
small dense model and the best variant of each larger size at most as slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ...compress.records import LATENCY_FILE
from ...release.plan import ReleaseArguments, ReleaseItem, check_repo_id
from ..task import Stage, Task, as_flags, script
from .arguments import TranslationDataArguments, TranslationModelArguments, TranslationTrainingArguments
from .model import get_model_size

# what compress.py needs of the translation section: where the pairs are, how they were split (seed and share held
# out where there is no validation file) and cut, so that the grid scores the variants on what the run scored
TRANSLATION_DATA_FLAGS = (
    "seed",
    "validation_split_percentage",
    "max_train_samples",
    "dataset_name",
    "dataset_config_name",
    "train_file",
    "validation_file",
    "source_lang",
    "target_lang",
    "source_column",
    "target_column",
    "max_source_length",
    "max_target_length",
)


def _train(model_args, data_args, training_args) -> dict:
    from .train import train_translation

    return train_translation(model_args, data_args, training_args)


def _compresses(config) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False))


def _compress(compression_args, data_args) -> list[dict]:
    from .compress import translation_grid

    return translation_grid(compression_args, data_args)


def _release_items(args: ReleaseArguments, variants: list[Path], namespace: str) -> list[ReleaseItem]:
    """The repos of the trained (dense) translation runs of ``--translation_dirs`` and of the compressed translation
    variants in ``variants``: repo ids checked by the Hub's rules, cards and public records."""
    from .card import render_card
    from .release import card_dataset_for_run, load_run, load_variant_records, public_record, public_variant_record

    loaded_runs = [load_run(folder) for folder in args.translation_dirs or []]
    translated = [load_variant_records(folder) for folder in variants]
    for run in loaded_runs:
        run.repo_id = check_repo_id(f"{namespace}/{run.default_repo_name(args.repo_prefix)}")
    for variant in translated:
        variant.repo_id = check_repo_id(f"{namespace}/{variant.default_repo_name(args.repo_prefix)}")
    by_folder = {run.folder.resolve(): run.repo_id for run in loaded_runs}
    for variant in translated:  # the card names the dense run as base_model where it is released too
        variant.parent_repo_id = by_folder.get(variant.run.folder.resolve())
    items = []
    for run in loaded_runs:
        dataset = card_dataset_for_run(args, run)
        scores = run.results["splits"][run.results["bleu_split"]]
        items.append(
            ReleaseItem(
                run.repo_id,
                run.folder,
                render_card(run, *dataset, license=args.license),
                public_record(run, *dataset),
                [run.summary, run.results],
                {
                    "variant": "dense",
                    "bleu": scores["bleu"],
                    "chrf": scores["chrf"],
                    "size_bytes": (run.folder / "model.safetensors").stat().st_size,
                },
                f"Release {run.size_name} ({run.summary['source_lang']}-{run.summary['target_lang']}, BLEU "
                f"{scores['bleu']:.1f})",
            )
        )
    for variant in translated:
        dataset = card_dataset_for_run(args, variant.run)
        row, summary = variant.row, variant.run.summary
        items.append(
            ReleaseItem(
                variant.repo_id,
                variant.folder,
                render_card(variant.run, *dataset, license=args.license, variant=variant),
                public_variant_record(variant, *dataset),
                [row, summary, variant.run.results],
                {"variant": row["variant"], "bleu": row["bleu"], "chrf": row["chrf"], "size_bytes": row["size_bytes"]},
                f"Release {variant.size_name} {row['variant']} ({summary['source_lang']}-{summary['target_lang']}, "
                f"BLEU {row['bleu']:.1f}, {row['latency_ms']:.0f} ms/sentence)",
            )
        )
    return items


def _plan(config) -> list[dict]:
    from .plan import plan

    section = config.section("translation")
    return plan(
        config.sizes,
        section["time_budget"],
        int(TASK.setting(section, "per_device_train_batch_size")),
        vocab_size=int(TASK.setting(section, "vocab_size")),
        architecture=TASK.setting(section, "architecture"),
        bf16=bool(TASK.setting(section, "bf16")),
    )


def _stages(config, size: str, launcher: list[str], python: list[str]) -> list[Stage]:
    trained = config.stage_dir("translate", size)
    flags = as_flags(config.section("translation"))
    stages = [("translate", trained, TASK.recipe_command(launcher, "--model_size", size, *flags))]
    if config.section("compression"):  # each size compressed: feed-forward pruning with recovery, int8
        data = {key: value for key, value in config.section("translation").items() if key in TRANSLATION_DATA_FLAGS}
        flags = as_flags({**data, **config.section("compression")})
        stages.append(
            (
                "compress",
                config.stage_dir("compress", size),
                [*python, script("compress.py"), "--model_name_or_path", str(trained), *flags],
            )
        )
    return stages


TIMING_FLAGS = ("max_eval_samples", "latency_sentences", "latency_batch_size", "latency_runs")


def _closing_stages(config, python: list[str]) -> list[Stage]:
    """With a compression section: every variant of every size timed side by side in one process
    (:mod:`.timing`), the latencies the report's equal-latency comparison reads."""
    if not config.section("compression"):
        return []
    options = {key: value for key, value in config.section("translation").items() if key in TRANSLATION_DATA_FLAGS}
    options.update({key: value for key, value in config.section("compression").items() if key in TIMING_FLAGS})
    grids = [str(config.stage_dir("compress", size)) for size in config.sizes]
    command = [*python, "-m", "hf_tbc.tasks.translation.timing", "--compression_dirs", *grids, *as_flags(options)]
    return [("latency", config.root / "latency", command)]


def small_dense_latency(config) -> Optional[float]:
    """The small baseline's (the first size's) dense fp32 latency per sentence: from the latency stage, which timed
    every variant side by side, where it timed it; else from the small size's own compression grid."""
    from ...compress.records import own_dense, read_latency, read_records

    grid = config.stage_dir("compress", config.sizes[0])
    timing = read_latency(config.root / "latency")
    if timing is not None and (grid.name, "dense-fp32") in timing["rows"]:
        return timing["rows"][grid.name, "dense-fp32"]["latency_ms"]
    record = grid / "compression.jsonl"
    dense = own_dense(read_records(record)) if record.is_file() else None
    return dense["latency_ms"] if dense else None


def _release_options(config) -> dict:
    """Without a compression section: every size's trained model, dense. With one: the small baseline dense, and the
    best variant (by BLEU) of every larger size whose latency per sentence is at most the small dense model's (the
    release section's ``limit`` overrides it), by the latency stage's side-by-side timings where it has run, as the
    report's equal-latency answer reads them."""
    if not config.section("compression"):
        return {"translation_dirs": [str(config.stage_dir("translate", size)) for size in config.sizes]}
    latency = config.root / "latency"
    return {
        "translation_dirs": [str(config.stage_dir("translate", config.sizes[0]))],
        "compression_dirs": [str(config.stage_dir("compress", size)) for size in config.sizes[1:]],
        "select_by": "latency",
        "limit": small_dense_latency(config),
        **({"latency_dir": str(latency)} if (latency / LATENCY_FILE).is_file() else {}),
    }


def _write_report(config, rows):
    from .report import write_report

    return write_report(config, rows)


TASK = Task(
    name="translation",
    recipe="run_translation.py",
    arguments=(TranslationModelArguments, TranslationDataArguments, TranslationTrainingArguments),
    train=_train,
    check_size=get_model_size,
    loss="validation cross-entropy (label-smoothed)",
    compresses=_compresses,
    compression_arguments=TranslationDataArguments,
    compress=_compress,
    release_items=_release_items,
    sections=("translation",),
    optional_sections=("compression",),
    stage_records={"translate": "eval_results.json", "compress": "compression.jsonl", "latency": "latency.json"},
    example="mt_cpu_demo.yaml",
    plan=_plan,
    stages=_stages,
    closing_stages=_closing_stages,
    release_options=_release_options,
    write_report=_write_report,
    advised_stage="translate",
)
