#!/usr/bin/env python
"""At which size does int8 make translation faster on this CPU? PyTorch fp32 against PyTorch dynamic int8 and ONNX
Runtime fp32 and int8 (the grid's ``onnx`` and ``onnx-int8`` variants) for several encoder-decoder sizes, side by side
in one run.

Speed does not depend on what a model learned, so each size is a fresh model (random weights, hf-tbc's config for the
size and a 4,000-token vocabulary) made to write exactly ``--target_tokens`` tokens for every sentence (greedy and beam
5), on real source sentences. Per sentence: one at a time (the variants of a size visited in turn for each sentence)
and in a batch of ``--batch_size`` (``--rounds`` rounds, in turn); medians and each variant's speed-up over PyTorch
fp32.

    python benchmarks/bench_translation_int8_sizes.py --validation_file ../shared/data/multi30k-en-fr/validation.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import onnxruntime
import torch
from transformers import AutoModelForSeq2SeqLM

from hf_tbc.compress.onnx_seq2seq import OnnxModelForSeq2SeqLM
from hf_tbc.compress.seq2seq import quantize_seq2seq, save_onnx_seq2seq
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
    rows, scratch, hardware = [], tempfile.TemporaryDirectory(), hardware_summary()
    variants = ("fp32", "int8", "onnx", "onnx-int8")
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
        models = {
            "fp32": fp32,
            "int8": quantize_seq2seq(AutoModelForSeq2SeqLM.from_config(config).eval(), "torch-int8"),
        }
        for name in ("onnx", "onnx-int8"):
            save_onnx_seq2seq(fp32, Path(scratch.name) / size / name, int8=name == "onnx-int8")
            models[name] = OnnxModelForSeq2SeqLM.from_pretrained(Path(scratch.name) / size / name)
        length = args.target_tokens + 1  # the start token, then exactly target_tokens tokens
        for decoding, beams in (("greedy", 1), ("beam5", 5)):
            options = {"num_beams": beams, "min_length": length, "max_length": length}
            cells = {name: (model, options) for name, model in models.items()}
            alone = latency_per_sentence(cells, tokenizer, sources[: args.sentences + 1])
            batched = latency_per_sentence(cells, tokenizer, sources, args.batch_size, args.rounds)
            rows.append(
                {
                    "size": size,
                    "parameters": fp32.num_parameters(),
                    "decoding": decoding,
                    **{f"{name}_ms_alone": round(value, 2) for name, value in alone.items()},
                    **{f"{name}_speedup_alone": round(alone["fp32"] / alone[name], 3) for name in variants[1:]},
                    **{f"{name}_ms_batched": round(value, 2) for name, value in batched.items()},
                    **{f"{name}_speedup_batched": round(batched["fp32"] / batched[name], 3) for name in variants[1:]},
                }
            )
            print(rows[-1], flush=True)
    lines = [
        f"Fresh models writing {args.target_tokens} tokens per sentence; {args.sentences} sentences one at a time and "
        f"{args.rounds} rounds of a batch of {args.batch_size}, the variants of a size in turn; int8 is PyTorch "
        f"dynamic int8, onnx and onnx-int8 ONNX Runtime {onnxruntime.__version__}; {hardware['cpu']} "
        f"({hardware['cpu_count']} cores), torch {hardware['torch']}, transformers {hardware['transformers']}",
        "",
    ]
    for setting in ("alone", "batched"):
        unit = "one sentence at a time" if setting == "alone" else f"in batches of {args.batch_size}"
        lines += [
            f"ms per sentence, {unit} (speed-up over PyTorch fp32):",
            "",
            "| size | parameters | decoding | PyTorch fp32 | PyTorch int8 | ONNX Runtime fp32 | ONNX Runtime int8 |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            cells = [f"{r[f'fp32_ms_{setting}']:.1f}"] + [
                f"{r[f'{name}_ms_{setting}']:.1f} ({r[f'{name}_speedup_{setting}']:.2f}x)" for name in variants[1:]
            ]
            lines.append(f"| {r['size']} | {r['parameters']:,} | {r['decoding']} | {' | '.join(cells)} |")
        lines.append("")
    print("\n".join(lines))
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.md").write_text("\n".join(lines) + "\n")
    (root / "results.json").write_text(json.dumps({"rows": rows, "hardware": hardware}, indent=2) + "\n")


if __name__ == "__main__":
    main()
