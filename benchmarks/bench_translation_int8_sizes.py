#!/usr/bin/env python
"""At which size does int8 make translation faster on this CPU? PyTorch fp32 against PyTorch dynamic int8 for several
encoder-decoder sizes, side by side in one run.

Speed does not depend on what a model learned, so each size is a fresh model (random weights, hf-tbc's config for the
size and a 4,000-token vocabulary) made to write exactly ``--target_tokens`` tokens for every sentence (greedy and beam
5), on real source sentences. Per sentence: one at a time (the two variants of a size visited in turn for each
sentence) and in a batch of ``--batch_size`` (``--rounds`` rounds, in turn); medians and the int8 speed-up.

    python benchmarks/bench_translation_int8_sizes.py --validation_file ../shared/data/multi30k-en-fr/validation.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM

from hf_tbc.compress.seq2seq import quantize_seq2seq
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.translation.compress import latency_per_sentence
from hf_tbc.tasks.translation.data import train_pair_tokenizer
from hf_tbc.tasks.translation.model import seq2seq_config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--validation_file", required=True, help="TSV whose en column holds the source sentences")
    parser.add_argument("--sizes", default="E3-D3-H256,E2-D2-H384,E6-D6-H512")
    parser.add_argument("--target_tokens", type=int, default=20, help="Tokens every translation is made to hold")
    parser.add_argument("--sentences", type=int, default=30, help="Sentences timed one at a time")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output_dir", default="bench_runs/translation_int8_sizes")
    args = parser.parse_args()
    if not Path(args.validation_file).is_file():
        sys.exit(f"error: --validation_file {args.validation_file} does not exist")
    with open(args.validation_file, newline="", encoding="utf-8") as handle:
        sources = [row["en"] for row in csv.DictReader(handle, delimiter="\t")]
    from datasets import Dataset

    tokenizer = train_pair_tokenizer(Dataset.from_dict({"source": sources, "target": sources}), vocab_size=4000)
    rows = []
    for size in [name.strip() for name in args.sizes.split(",") if name.strip()]:
        torch.manual_seed(0)
        config = seq2seq_config(
            size,
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.eos_token_id,
        )
        fp32 = AutoModelForSeq2SeqLM.from_config(config).eval()
        int8 = quantize_seq2seq(AutoModelForSeq2SeqLM.from_config(config).eval(), "torch-int8")
        length = args.target_tokens + 1  # the start token, then exactly target_tokens tokens
        for decoding, beams in (("greedy", 1), ("beam5", 5)):
            options = {"num_beams": beams, "min_length": length, "max_length": length}
            cells = {"fp32": (fp32, options), "int8": (int8, options)}
            alone = latency_per_sentence(cells, tokenizer, sources[: args.sentences + 1])
            batched = latency_per_sentence(cells, tokenizer, sources, args.batch_size, args.rounds)
            rows.append(
                {
                    "size": size,
                    "parameters": fp32.num_parameters(),
                    "decoding": decoding,
                    **{f"{name}_ms_alone": round(value, 2) for name, value in alone.items()},
                    "speedup_alone": round(alone["fp32"] / alone["int8"], 3),
                    **{f"{name}_ms_batched": round(value, 2) for name, value in batched.items()},
                    "speedup_batched": round(batched["fp32"] / batched["int8"], 3),
                }
            )
            print(rows[-1], flush=True)
    hardware = hardware_summary()
    lines = [
        f"Fresh models writing {args.target_tokens} tokens per sentence; {args.sentences} sentences one at a time and "
        f"{args.rounds} rounds of a batch of {args.batch_size}, fp32 and int8 in turn; {hardware['cpu']} "
        f"({hardware['cpu_count']} cores), torch {hardware['torch']}, transformers {hardware['transformers']}",
        "",
        "| size | parameters | decoding | fp32 ms / sentence, alone | int8 | speed-up | fp32 ms / sentence, batch "
        f"{args.batch_size} | int8 | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']} | {r['parameters']:,} | {r['decoding']} | {r['fp32_ms_alone']:.1f} | {r['int8_ms_alone']:.1f} "
        f"| {r['speedup_alone']:.2f}x | {r['fp32_ms_batched']:.2f} | {r['int8_ms_batched']:.2f} "
        f"| {r['speedup_batched']:.2f}x |"
        for r in rows
    ]
    print("\n".join(lines))
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.md").write_text("\n".join(lines) + "\n")
    (root / "results.json").write_text(json.dumps({"rows": rows, "hardware": hardware}, indent=2) + "\n")


if __name__ == "__main__":
    main()
