"""Every variant of several translation compression grids timed side by side in one process: the latency a study
compares across sizes.

Each grid times its own variants together (``compress.py``), but grids run one after another and a machine's speed
drifts between them (by a fifth on a shared 2-core CPU, more than many of the differences compared), so across sizes
that comparison is loose. Here every variant of every grid is loaded at once and visited in turn, one sentence at a
time and in batches of ``--latency_batch_size``, in ``--passes`` passes; each latency is the passes' mean, and the
largest relative disagreement between two passes is the tie margin. ``latency.json`` holds one row per variant.

    python -m hf_tbc.tasks.translation.timing --compression_dirs runs/E2-D2-H128-compressed runs/E2-D2-H384-compressed \
        --train_file DATA/multi30k-en-fr/train.tsv --validation_file DATA/multi30k-en-fr/validation.tsv \
        --source_lang en --target_lang fr --max_eval_samples 500 --output_dir runs/latency

The data flags are ``run_translation.py``'s, so that the sources are the pairs the grids scored. Every variant is held
in memory at once (the sizes a CPU study trains take tens of MB each).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from transformers import AutoTokenizer

from ...cli import parse_args, peek_flag, run_recipe
from ...compress.records import LATENCY_FILE, read_records
from ...errors import UsageError
from ...hardware import hardware_summary
from .arguments import TranslationDataArguments
from .compress import latency_per_sentence, load_translation_variant
from .data import pairs_from_arguments


@dataclass
class TimingArguments:
    compression_dirs: list[str] = field(
        metadata={"help": "compress.py output folders of a translation model each; a grid is named by its folder."}
    )
    output_dir: str = field(metadata={"help": f"Where {LATENCY_FILE} goes."})
    latency_sentences: int = field(default=50, metadata={"help": "Validation sources timed one at a time."})
    latency_batch_size: int = field(default=32, metadata={"help": "Sources translated together, for the batch time."})
    latency_runs: int = field(default=10, metadata={"help": "Timed rounds of that batch; the median is kept."})
    passes: int = field(default=2, metadata={"help": "Passes over every variant; their spread is the tie margin."})
    seed: int = field(default=42, metadata={"help": "The split seed, where there is no validation file."})

    def __post_init__(self):
        for folder in self.compression_dirs:
            if not (Path(folder) / "compression.jsonl").is_file():
                raise UsageError(f"--compression_dirs {folder} holds no compression.jsonl: pass compress.py outputs")
        names = [Path(folder).name for folder in self.compression_dirs]
        if len(set(names)) < len(names):
            raise UsageError(f"--compression_dirs {' '.join(self.compression_dirs)}: two grids share a folder name")
        if self.passes < 2:
            raise UsageError(f"--passes {self.passes}: at least 2, so that the tie margin is measured")


def validation_sources(data_args: TranslationDataArguments, seed: int) -> list[str]:
    """The first ``max_eval_samples`` validation sources, split as training and the grids split them."""
    pairs = pairs_from_arguments(data_args, seed, test=False)["validation"]
    if data_args.max_eval_samples is not None:
        pairs = pairs.select(range(min(data_args.max_eval_samples, len(pairs))))
    return list(pairs["source"])


def time_grids(
    compression_dirs: list[Path],
    sources: list[str],
    latency_sentences: int = 50,
    batch_size: int = 32,
    rounds: int = 10,
    passes: int = 2,
    max_source_length: Optional[int] = None,
) -> dict:
    """Loads every variant of every grid (each with its own tokenizer) and times them all in turn, ``passes`` times;
    returns the record :data:`LATENCY_FILE` holds."""
    cells, tokenizers, names = {}, {}, {}
    for folder in map(Path, compression_dirs):
        for row in read_records(folder):
            name = f"{folder.name}/{row['variant']}"
            cells[name] = (load_translation_variant(folder / row["variant"]), {})
            tokenizers[name] = AutoTokenizer.from_pretrained(folder / row["variant"])
            names[name] = (folder.name, row["variant"])
    first = next(iter(tokenizers.values()))
    measured = []
    for _ in range(passes):
        alone = latency_per_sentence(
            cells, first, sources[: latency_sentences + 1], max_source_length=max_source_length, tokenizers=tokenizers
        )
        batched = latency_per_sentence(
            cells, first, sources, batch_size, rounds, max_source_length=max_source_length, tokenizers=tokenizers
        )
        measured.append((alone, batched))
    margin = max(
        abs(one[kind][name] - other[kind][name]) / min(one[kind][name], other[kind][name])
        for index, one in enumerate(measured)
        for other in measured[index + 1 :]
        for kind in (0, 1)
        for name in cells
    )
    rows = [
        {
            "grid": grid,
            "variant": variant,
            "latency_ms": round(sum(done[0][name] for done in measured) / passes, 3),
            "latency_ms_batched": round(sum(done[1][name] for done in measured) / passes, 3),
            "passes_ms": [round(done[0][name], 3) for done in measured],
            "passes_ms_batched": [round(done[1][name], 3) for done in measured],
        }
        for name, (grid, variant) in names.items()
    ]
    return {
        "rows": rows,
        "margin": round(margin, 4),
        "latency_sentences": min(latency_sentences, len(sources) - 1),
        "latency_batch": min(batch_size, len(sources)),
        "latency_rounds": rounds,
        "passes": passes,
        "hardware": hardware_summary(),
    }


DECODING_FLAGS = ("num_beams", "no_repeat_ngram_size")  # data flags of training that timing does not apply


def main() -> None:
    for name in DECODING_FLAGS:
        if peek_flag(name) is not None:
            raise UsageError(
                f"--{name} does not apply here: every variant is timed decoding as its saved generation config says "
                "(as release and its card use it); set it when training or compressing, or leave it out"
            )
    args, data_args = parse_args((TimingArguments, TranslationDataArguments))
    record = time_grids(
        [Path(folder) for folder in args.compression_dirs],
        validation_sources(data_args, args.seed),
        args.latency_sentences,
        args.latency_batch_size,
        args.latency_runs,
        args.passes,
        data_args.max_source_length,
    )
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    partial = output / f".{LATENCY_FILE}.partial"
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, output / LATENCY_FILE)  # whole or not at all
    print(
        f"{len(record['rows'])} variants of {len(args.compression_dirs)} grids timed side by side, "
        f"{args.passes} passes (tie margin {100 * record['margin']:.0f} %): {output / LATENCY_FILE}"
    )


if __name__ == "__main__":
    run_recipe(main)
