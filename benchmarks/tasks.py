"""The benchmark tasks on the shared data folder: SST-2 (GLUE, dev = GLUE validation) and SICK (three-way NLI on
sentence pairs, like the paper's MNLI), as flags of recipes/run_classification.py and recipes/compress.py."""

from __future__ import annotations

import sys
from pathlib import Path

TASKS = ("sst2", "sick")


def labelled_test_file(task: str, data_dir: Path) -> Path | None:
    """The task's labelled test split, to report (never to tune on): SICK has one, GLUE's SST-2 test has no labels."""
    path = data_dir / "sick-nli" / "test.tsv"
    return path if task == "sick" and path.is_file() else None


def task_flags(task: str, data_dir: Path) -> list[str]:
    """``--train_file``, ``--validation_file`` and the text columns of ``task``; exits with one line if missing."""
    if task == "sst2":
        files = {"train": data_dir / "sst2" / "train.tsv", "validation": data_dir / "sst2" / "dev.tsv"}
        extra = []
    elif task == "sick":
        files = {"train": data_dir / "sick-nli" / "train.tsv", "validation": data_dir / "sick-nli" / "validation.tsv"}
        extra = ["--text_column", "premise", "--text_pair_column", "hypothesis"]
    else:
        sys.exit(f"error: unknown task {task!r}: choose {' or '.join(TASKS)}")
    for path in files.values():
        if not path.is_file():
            sys.exit(f"error: --data_dir {data_dir} lacks {path}: pass the folder holding sst2/ and sick-nli/")
    return ["--train_file", str(files["train"]), "--validation_file", str(files["validation"]), *extra]
