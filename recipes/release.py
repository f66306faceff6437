#!/usr/bin/env python
"""Release compressed variants and small baselines to the Hub, each with an evaluated model card.

    # the most accurate variant of each model at most 40 ms per batch, plus the small model's dense baseline
    python recipes/release.py --compression_dirs runs/L12-compressed runs/L3-compressed --select_by latency --limit 40 \
        --baseline_dirs runs/L3-compressed --hub_organization my-org --output_dir release
    # or name the variants; --dry_run writes the repo folders and pushes nothing
    python recipes/release.py --variants runs/L12-compressed/pruned50-onnx-int8 --dry_run --output_dir release

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
    if not folders:
        raise UsageError("nothing to release: pass --variants, or --compression_dirs (with --select_by and a --limit "
                         "some variant meets) and --baseline_dirs")
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

    cards = {folder: render_card(variant, *args.card_dataset_for(variant), license=args.license,
                                 pretraining_corpus_ids=args.card_pretraining_datasets)
             for folder, variant in variants.items()}  # every card first: a bad record stops before anything is written
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = []
    for folder, variant in variants.items():
        repo_folder = assemble(variant, cards[folder], output_dir / variant.repo_id.split("/")[-1])
        entry = {"variant": variant.row["variant"], "repo_id": variant.repo_id, "folder": str(repo_folder),
                 "accuracy": variant.row["accuracy"], "size_bytes": variant.row["size_bytes"], "status": "written"}
        report.append(entry)
    try:
        if not args.dry_run:
            for entry, variant in zip(report, variants.values()):
                result = push_folder(api, Path(entry["folder"]), variant.repo_id, f"Release {variant.row['variant']} "
                                     f"({variant.size_name}, accuracy {variant.row['accuracy']:.4f})",
                                     private=args.private, overwrite=args.overwrite)
                entry.update(status=result.status, commit=result.commit)
                print(f"{result.status:>9}  https://huggingface.co/{variant.repo_id}")
    finally:
        (output_dir / "release.json").write_text(json.dumps(report, indent=2) + "\n")
    for entry in report:
        print(f"{entry['status']:>9}  {entry['repo_id']}: accuracy {entry['accuracy']:.4f}, "
              f"{entry['size_bytes'] / 1e6:.2f} MB -> {entry['folder']}")


if __name__ == "__main__":
    run_recipe(main)
