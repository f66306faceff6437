#!/usr/bin/env python
"""Release compressed variants and small baselines to the Hub, each with an evaluated model card.

    # the most accurate variant of each model at most 40 ms per batch, plus the small model's dense baseline
    python recipes/release.py --compression_dirs runs/L12-compressed runs/L3-compressed --select_by latency --limit 40 \
        --baseline_dirs runs/L3-compressed --hub_organization my-org --output_dir release
    # or name the variants; --dry_run writes the repo folders and pushes nothing
    python recipes/release.py --variants runs/L12-compressed/pruned50-onnx-int8 --dry_run --output_dir release
    # translation runs (run_translation.py outputs), each with a BLEU-evaluated card
    python recipes/release.py --translation_dirs runs/E3-D3-H256 --card_dataset multi30k --card_dataset_config en-fr \
        --card_dataset_split test_2016_flickr --hub_organization my-org --output_dir release

The token comes from HF_TOKEN or `huggingface-cli login` and is never printed or written.
"""

import json
from pathlib import Path

from huggingface_hub import HfApi

from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.errors import UsageError
from hf_tbc.hub import push_folder, require_token
from hf_tbc.release import (
    ReleaseArguments,
    assemble,
    check_repo_id,
    dense_parent,
    load_variant_records,
    render_card,
    select_variants,
)
from hf_tbc.training import check_writable
from hf_tbc.translation.release import load_translation_run, render_translation_card


def main() -> None:
    (args,) = parse_args((ReleaseArguments,))
    check_writable(args.output_dir)
    token = None if args.dry_run else require_token()
    api = HfApi(token=token)
    namespace = args.hub_organization or (api.whoami()["name"] if token else None)
    if namespace is None:
        raise UsageError("no Hub namespace for the repo ids: pass --hub_organization (or log in)")

    folders = [Path(folder) for folder in args.variants or []]
    if args.compression_dirs:
        folders += select_variants(args.compression_dirs, args.select_by, args.limit)
    folders += [Path(directory) / "dense-fp32" for directory in args.baseline_dirs or []]
    runs = [load_translation_run(folder) for folder in args.translation_dirs or []]
    if not folders and not runs:
        raise UsageError("nothing to release: pass --variants, or --compression_dirs (with --select_by and a --limit "
                         "some variant meets) and --baseline_dirs, or --translation_dirs")
    variants = {}
    for folder in folders:  # every compressed variant brings its dense parent, which its card names as base_model
        variant = load_variant_records(folder)
        parent = dense_parent(variant)
        for item in ([load_variant_records(parent)] if parent else []) + [variant]:
            variants.setdefault(item.folder, item)
    for variant in variants.values():
        variant.repo_id = check_repo_id(f"{namespace}/{variant.default_repo_name(args.repo_prefix)}")
    by_folder = {variant.folder: variant.repo_id for variant in variants.values()}
    for variant in variants.values():
        parent = dense_parent(variant)
        variant.parent_repo_id = by_folder.get(parent.resolve()) if parent else None
    for run in runs:
        run.repo_id = check_repo_id(f"{namespace}/{run.default_repo_name(args.repo_prefix)}")

    # every card first: a bad record stops the release before anything is written
    releases = [(variant, render_card(variant, *args.card_dataset_for(variant), license=args.license,
                                      pretraining_corpus_ids=args.card_pretraining_datasets),
                 {"variant": variant.row["variant"], "accuracy": variant.row["accuracy"], "size_bytes": variant.row["size_bytes"]},
                 f"Release {variant.row['variant']} ({variant.size_name}, accuracy {variant.row['accuracy']:.4f})")
                for variant in variants.values()]
    for run in runs:
        scores = run.results["splits"][run.results["bleu_split"]]
        releases.append((run, render_translation_card(run, *args.card_dataset_for_translation(run), license=args.license),
                         {"variant": "dense", "bleu": scores["bleu"], "chrf": scores["chrf"],
                          "size_bytes": (run.folder / "model.safetensors").stat().st_size},
                         f"Release {run.size_name} ({run.summary['source_lang']}-{run.summary['target_lang']}, "
                         f"BLEU {scores['bleu']:.1f})"))
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = []
    for item, card, figures, _ in releases:
        repo_folder = assemble(item, card, output_dir / item.repo_id.split("/")[-1])
        report.append({"repo_id": item.repo_id, "folder": str(repo_folder), **figures, "status": "written"})
    try:
        if not args.dry_run:
            for entry, (item, _, _, message) in zip(report, releases):
                result = push_folder(api, Path(entry["folder"]), item.repo_id, message, private=args.private,
                                     overwrite=args.overwrite)
                entry.update(status=result.status, commit=result.commit)
                print(f"{result.status:>9}  https://huggingface.co/{item.repo_id}")
    finally:
        (output_dir / "release.json").write_text(json.dumps(report, indent=2) + "\n")
    for entry in report:
        score = f"accuracy {entry['accuracy']:.4f}" if "accuracy" in entry else f"BLEU {entry['bleu']:.2f}"
        print(f"{entry['status']:>9}  {entry['repo_id']}: {score}, {entry['size_bytes'] / 1e6:.2f} MB -> {entry['folder']}")


if __name__ == "__main__":
    run_recipe(main)
