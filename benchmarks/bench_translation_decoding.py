#!/usr/bin/env python
"""How a translation model decodes: greedy against beam search (with or without an n-gram block), in fp32 and int8,
in PyTorch and in ONNX Runtime, side by side in one run.

Every cell of the grid (quantization x decoding) translates the whole validation split in batches, which gives its
BLEU and chrF (sacreBLEU), the number of outputs that loop ("tetetete"), and the time of the split; BLEU differences
against fp32 greedy come with a 95 % paired-bootstrap interval. Then the latency per sentence: the first
``--latency_sentences`` sources one at a time (batch 1, what a service translating a request does), the cells
visited in turn for every sentence so that machine noise hits all of them alike, and the first
``--latency_batch_size`` sources translated together ``--latency_rounds`` times (ms per sentence in a batch job);
medians, with ratios against the first quantization (PyTorch fp32) at the same decoding. ``onnx`` and ``onnx-int8``
are the grid's ONNX Runtime variants (``OnnxModelForSeq2SeqLM``: exported graphs, hf-tbc's own greedy and beam search),
saved to a temporary folder and loaded back as a user would.

    python benchmarks/bench_translation_decoding.py --model_name_or_path runs/E3-D3-H256 \
        --validation_file ../shared/data/multi30k-en-fr/validation.tsv --source_lang en --target_lang fr
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_tbc.compress.onnx_seq2seq import OnnxModelForSeq2SeqLM
from hf_tbc.compress.seq2seq import ONNX_METHODS, QUANTIZATION_BACKENDS, quantize_seq2seq, save_onnx_seq2seq
from hf_tbc.hardware import hardware_summary
from hf_tbc.tasks.translation.bleu import corpus_scores, looping, paired_bleu_interval
from hf_tbc.tasks.translation.compress import latency_per_sentence, translate
from hf_tbc.tasks.translation.data import load_pairs


def decoding_options(name: str) -> dict:
    """``greedy``, ``beam5``, ``beam5-nr3`` (no 3-gram twice), ``greedy-rp1.2`` (repetition penalty) as
    ``generate`` options."""
    options: dict = {}
    for part in name.split("-"):
        if part == "greedy":
            options["num_beams"] = 1
        elif part.startswith("beam") and part[4:].isdigit():
            options["num_beams"] = int(part[4:])
        elif part.startswith("nr") and part[2:].isdigit():
            options["no_repeat_ngram_size"] = int(part[2:])
        elif part.startswith("rp"):
            options["repetition_penalty"] = float(part[2:])
        else:
            sys.exit(f"error: decoding {name!r}: write greedy or beamN, optionally -nrK or -rpX (e.g. beam5-nr3)")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_name_or_path", required=True, help="A run_translation.py output folder")
    parser.add_argument("--validation_file", required=True)
    parser.add_argument("--source_lang", default="en")
    parser.add_argument("--target_lang", default="fr")
    parser.add_argument("--decodings", default="greedy,beam4,beam5,beam5-nr3", help="Comma-separated, see above")
    parser.add_argument(
        "--quantizations",
        default="none,torch-int8,onnx,onnx-int8",
        help=f"Comma-separated: {', '.join((*QUANTIZATION_BACKENDS, *ONNX_METHODS))}",
    )
    parser.add_argument("--max_eval_samples", type=int, default=None, help="Score the first N pairs only")
    parser.add_argument("--latency_sentences", type=int, default=60, help="Sentences timed one at a time")
    parser.add_argument("--latency_batch_size", type=int, default=32, help="Sentences per batch of the batched timing")
    parser.add_argument("--latency_rounds", type=int, default=10, help="Timed rounds of that batch")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--output_dir", default="bench_runs/translation_decoding")
    args = parser.parse_args()
    folder = Path(args.model_name_or_path)
    if not (folder / "config.json").is_file():
        sys.exit(f"error: --model_name_or_path {folder} holds no config.json: pass a run_translation.py output folder")
    decodings = [name.strip() for name in args.decodings.split(",") if name.strip()]
    options = {name: decoding_options(name) for name in decodings}
    quantizations = [name.strip() for name in args.quantizations.split(",") if name.strip()]
    known = (*QUANTIZATION_BACKENDS, *ONNX_METHODS)
    unknown = [name for name in quantizations if name not in known]
    if unknown:
        sys.exit(f"error: --quantizations {unknown[0]!r}: choose from {', '.join(known)}")

    # the loader needs training pairs: the validation file stands in, only its validation split is read
    pairs = load_pairs(
        train_file=args.validation_file,
        validation_file=args.validation_file,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
    )["validation"]
    if args.max_eval_samples:
        pairs = pairs.select(range(min(args.max_eval_samples, len(pairs))))
    sources, references = list(pairs["source"]), list(pairs["target"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    models = {}
    scratch = tempfile.TemporaryDirectory()
    for quantization in quantizations:
        model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
        if quantization in ONNX_METHODS:
            saved = Path(scratch.name) / quantization
            save_onnx_seq2seq(model, saved, int8=quantization == "onnx-int8")
            models[quantization] = OnnxModelForSeq2SeqLM.from_pretrained(saved)
        else:
            models[quantization] = quantize_seq2seq(model, quantization)

    rows, outputs = [], {}
    for quantization, model in models.items():
        for decoding in decodings:
            start = time.perf_counter()
            hypotheses = translate(
                model, tokenizer, sources, args.batch_size, max_length=args.max_length, **options[decoding]
            )
            seconds = time.perf_counter() - start
            outputs[quantization, decoding] = hypotheses
            rows.append(
                {
                    "quantization": quantization,
                    "decoding": decoding,
                    **corpus_scores(hypotheses, references),
                    "looping": looping(hypotheses),
                    "split_s": round(seconds, 2),
                }
            )
            print(f"{quantization:>12} {decoding:>12}: {rows[-1]}", flush=True)
    baseline = outputs[quantizations[0], decodings[0]]
    for row in rows:
        if (row["quantization"], row["decoding"]) != (quantizations[0], decodings[0]):
            hypotheses = outputs[row["quantization"], row["decoding"]]
            row["bleu_vs_first"] = paired_bleu_interval(hypotheses, baseline, references)
    cells = {
        f"{quantization} {decoding}": (models[quantization], {"max_length": args.max_length, **options[decoding]})
        for quantization in quantizations
        for decoding in decodings
    }
    latency = latency_per_sentence(cells, tokenizer, sources[: args.latency_sentences + 1])
    batched = latency_per_sentence(cells, tokenizer, sources, args.latency_batch_size, args.latency_rounds)
    for row in rows:
        cell, reference_cell = f"{row['quantization']} {row['decoding']}", f"{quantizations[0]} {row['decoding']}"
        row["ms_per_sentence"] = round(latency[cell], 2)
        row["speedup_vs_first_quantization"] = round(latency[reference_cell] / latency[cell], 3)
        row["ms_per_sentence_batched"] = round(batched[cell], 2)
        row["batched_speedup_vs_first_quantization"] = round(batched[reference_cell] / batched[cell], 3)

    hardware = hardware_summary()
    first = f"{quantizations[0]} {decodings[0]}"
    header = (
        f"{folder.name}: {len(sources)} validation pairs, batches of {args.batch_size} for the scores; latency "
        f"round-robin, one sentence at a time over {args.latency_sentences} sentences and {args.latency_rounds} rounds "
        f"of a batch of {args.latency_batch_size}; {hardware['cpu']} ({hardware['cpu_count']} "
        f"cores), torch {hardware['torch']}, transformers {hardware['transformers']}"
    )
    table = [
        f"| quantization | decoding | BLEU | chrF | BLEU vs {first} (95 % paired bootstrap) | looping outputs | "
        f"split (s) | ms / sentence, alone | speed-up vs {quantizations[0]} | ms / sentence, batch "
        f"{args.latency_batch_size} | speed-up vs {quantizations[0]} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        interval = row.get("bleu_vs_first")
        difference = f"{interval[0]:+.2f} [{interval[1]:+.2f}, {interval[2]:+.2f}]" if interval else "—"
        table.append(
            f"| {row['quantization']} | {row['decoding']} | {row['bleu']:.2f} | {row['chrf']:.2f} | {difference} | "
            f"{row['looping']} | {row['split_s']:.1f} | {row['ms_per_sentence']:.1f} | "
            f"{row['speedup_vs_first_quantization']:.2f}x | {row['ms_per_sentence_batched']:.1f} | "
            f"{row['batched_speedup_vs_first_quantization']:.2f}x |"
        )
    text = "\n".join([header, "", *table])
    print("\n" + text)
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps({"setup": header, "rows": rows, "hardware": hardware}, indent=2))
    (root / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
