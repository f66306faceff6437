#!/usr/bin/env python
"""Which int8 path for translation models on CPU: PyTorch dynamic int8, torchao, and ONNX Runtime (encoder, decoder
and decoder with past key values, exported by optimum-onnx), each against PyTorch fp32, side by side in one run.

Every backend translates the validation split greedily and with beam 5 (BLEU), then the first ``--latency_sentences``
sources one at a time, the backends visited in turn for every sentence; medians with ratios against PyTorch fp32.
optimum-onnx's exporter supports transformers 4.57 only, so this runs on the lower end of the supported range (CI's
``.ci-venv-lower``); torchao is tried where it is installed. A model saved by transformers 5 names its tokenizer
class ``TokenizersBackend``, which 4.57 does not know: ``--tokenizer_class PreTrainedTokenizerFast`` loads it.

    .ci-venv-lower/bin/python benchmarks/bench_translation_int8_backends.py --model_name_or_path runs/E3-D3-H256 \
        --validation_file ../shared/data/multi30k-en-fr/validation.tsv --output_dir bench_runs/int8_backends
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import sacrebleu
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedTokenizerFast

from hf_tbc.tasks.translation.compress import latency_per_sentence

DECODINGS = {"greedy": {"num_beams": 1}, "beam5": {"num_beams": 5}}


def onnx_models(folder: Path, tokenizer, scratch: Path) -> dict:
    """ONNX Runtime fp32 and dynamic int8 (optimum's AVX-512 VNNI configuration, per tensor) of ``folder``."""
    from optimum.onnxruntime import ORTModelForSeq2SeqLM, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    exported, quantized = scratch / "onnx-fp32", scratch / "onnx-int8"
    ORTModelForSeq2SeqLM.from_pretrained(folder, export=True, use_cache=True).save_pretrained(exported)
    tokenizer.save_pretrained(exported)
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
    for file in sorted(exported.glob("*.onnx")):
        ORTQuantizer.from_pretrained(exported, file_name=file.name).quantize(
            save_dir=quantized, quantization_config=config
        )
    names = {
        "encoder_file_name": "encoder_model_quantized.onnx",
        "decoder_file_name": "decoder_model_quantized.onnx",
        "decoder_with_past_file_name": "decoder_with_past_model_quantized.onnx",
    }
    return {
        "ONNX Runtime fp32": ORTModelForSeq2SeqLM.from_pretrained(exported),
        "ONNX Runtime int8": ORTModelForSeq2SeqLM.from_pretrained(quantized, **names),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_name_or_path", required=True, help="A run_translation.py output folder")
    parser.add_argument("--validation_file", required=True, help="TSV with the source and target columns")
    parser.add_argument("--source_lang", default="en")
    parser.add_argument("--target_lang", default="fr")
    parser.add_argument("--tokenizer_class", default=None, help="e.g. PreTrainedTokenizerFast (see above)")
    parser.add_argument("--latency_sentences", type=int, default=40)
    parser.add_argument("--output_dir", default="bench_runs/int8_backends")
    args = parser.parse_args()
    folder, root = Path(args.model_name_or_path), Path(args.output_dir)
    if not (folder / "config.json").is_file():
        sys.exit(f"error: --model_name_or_path {folder} holds no config.json: pass a run_translation.py output folder")
    with open(args.validation_file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    sources, references = [row[args.source_lang] for row in rows], [row[args.target_lang] for row in rows]
    tokenizer = (
        PreTrainedTokenizerFast.from_pretrained(folder)
        if args.tokenizer_class
        else AutoTokenizer.from_pretrained(folder)
    )
    models = {"PyTorch fp32": AutoModelForSeq2SeqLM.from_pretrained(folder).eval()}
    models["PyTorch dynamic int8"] = torch.ao.quantization.quantize_dynamic(
        AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), {torch.nn.Linear}, dtype=torch.qint8
    )
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        models["torchao int8"] = model
    except ImportError:
        print("torchao is not installed: left out", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    models.update(onnx_models(folder, tokenizer, root))

    results = {}
    with torch.no_grad():
        for name, model in models.items():
            for decoding, options in DECODINGS.items():
                hypotheses = []
                for start in range(0, len(sources), 50):
                    batch = tokenizer(sources[start : start + 50], return_tensors="pt", padding=True)
                    generated = model.generate(**batch, max_length=128, **options)
                    hypotheses += [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
                bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
                results[name, decoding] = {"bleu": round(bleu, 2)}
                print(f"{name}, {decoding}: BLEU {bleu:.2f}", flush=True)
        cells = {
            (name, decoding): (models[name], {"max_length": 128, **DECODINGS[decoding]}) for name, decoding in results
        }
        latency = latency_per_sentence(cells, tokenizer, sources[: args.latency_sentences + 1])
    import transformers

    lines = [
        f"{folder.name}: {len(sources)} validation pairs; latency one sentence at a time over {args.latency_sentences} "
        f"sentences, round-robin; torch {torch.__version__}, transformers {transformers.__version__}",
        "",
        "| backend | decoding | BLEU | BLEU vs PyTorch fp32 | ms / sentence | speed-up vs PyTorch fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for (name, decoding), result in results.items():
        result["ms_per_sentence"] = round(latency[name, decoding], 2)
        base = results["PyTorch fp32", decoding]
        lines.append(
            f"| {name} | {decoding} | {result['bleu']:.2f} | {result['bleu'] - base['bleu']:+.2f} | "
            f"{result['ms_per_sentence']:.1f} | {base['ms_per_sentence'] / result['ms_per_sentence']:.2f}x |"
        )
    print("\n".join(lines))
    (root / "results.md").write_text("\n".join(lines) + "\n")
    (root / "results.json").write_text(
        json.dumps({f"{name} {decoding}": value for (name, decoding), value in results.items()}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
