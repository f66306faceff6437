#!/usr/bin/env python
"""Release compressed variants and small baselines to the Hub, each with an evaluated model card.

    # the most accurate variant of each model at most 40 ms per batch, plus the small model's dense baseline
    python recipes/release.py --compression_dirs runs/L12-compressed runs/L3-compressed --select_by latency --limit 40 \
        --baseline_dirs runs/L3-compressed --hub_organization my-org --output_dir release
    # or name the variants; --dry_run writes the repo folders and pushes nothing
    python recipes/release.py --variants runs/L12-compressed/pruned50-onnx-int8 --hub_organization my-org --dry_run \
        --output_dir release
    # translation runs (run_translation.py outputs), each with a BLEU-evaluated card
    python recipes/release.py --translation_dirs runs/E3-D3-H256 --card_dataset multi30k --card_dataset_config en-fr \
        --card_dataset_split test_2016_flickr --hub_organization my-org --output_dir release

Before anything is written to the Hub, the whole release is checked: every repo id, the token's right to write to
the namespace, which repos exist and whether --overwrite lets them be replaced, and every file of every repo folder
for strings of this machine (local paths, folder names, the host name). A Hub folder holds the model files, the card
and one public record (hf_tbc_record.json), nothing else. release.json says which repos landed; if a push fails
midway, rerunning the same command pushes the rest (the ones that landed are unchanged: no new commit).

The token comes from HF_TOKEN or `huggingface-cli login` and is never printed or written.
"""

import shutil
from pathlib import Path

from huggingface_hub import HfApi

from hf_tbc.budget.runs import check_writable, write_json
from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.errors import UsageError
from hf_tbc.release.hub import check_write_access, preflight, publish, require_token
from hf_tbc.release.plan import ReleaseArguments, describe_files, move_staged, stage_release
from hf_tbc.tasks.registry import plan_release


def main() -> None:
    (args,) = parse_args((ReleaseArguments,))
    check_writable(args.output_dir)
    api = None if args.dry_run else HfApi(token=require_token())
    namespace = check_write_access(api, args.hub_organization) if api else args.hub_organization
    if namespace is None:
        raise UsageError("no Hub namespace for the repo ids: pass --hub_organization (a dry run does not log in)")
    items = plan_release(args, namespace)  # names, cards and records: bad input stops here
    output_dir = Path(args.output_dir)
    staging, staged = stage_release(items, output_dir)  # assembled and scanned for local strings
    try:
        plans = {plan.repo_id: plan.action for plan in preflight(api, staged, args.overwrite)} if api else {}
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    folders = move_staged(staging, staged, output_dir)
    report = [
        {
            "repo_id": item.repo_id,
            "folder": str(folders[item.repo_id]),
            **item.figures,
            "files": describe_files(folders[item.repo_id]),
            "status": "written",
        }
        for item in items
    ]
    if args.dry_run:
        write_json(output_dir / "release.json", report)
        print(f"dry run: nothing pushed; {len(items)} repos, exactly these files, in {output_dir}:")
        for entry in report:
            total = sum(file["bytes"] for file in entry["files"])
            print(f"  {entry['repo_id']}  ({len(entry['files'])} files, {total / 1e6:.2f} MB)")
            print("\n".join(f"      {file['path']:<32} {file['bytes']:>12,} bytes" for file in entry["files"]))
        return
    for entry in report:
        entry["plan"] = plans[entry["repo_id"]]
    publish(
        api,
        [(item.repo_id, folders[item.repo_id], item.message) for item in items],
        report,
        output_dir / "release.json",
        private=args.private,
        overwrite=args.overwrite,
    )
    for entry in report:
        score = f"accuracy {entry['accuracy']:.4f}" if "accuracy" in entry else f"BLEU {entry['bleu']:.2f}"
        print(
            f"{entry['status']:>9}  {entry['repo_id']}: {score}, {entry['size_bytes'] / 1e6:.2f} MB -> "
            f"{entry['folder']}"
        )


if __name__ == "__main__":
    run_recipe(main)
