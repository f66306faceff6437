#!/usr/bin/env python
"""Run the paper's study for your budget: pretrain every size, finetune, compress, release, and report; or, with a
translation config (task: translation), train every encoder-decoder size and report BLEU against wall-clock.

    python recipes/study.py --config cpu_demo --data_dir DATA     # a bundled config, or the path of your own
    python recipes/study.py --config cpu_demo --data_dir DATA --plan_only   # probe step times, then stop

Stages whose outputs are complete are skipped, so rerunning a killed study resumes it. The study folder
gets report.md and the figures (loss_vs_time.png, ...; for translation bleu_vs_time.png, bleu_vs_steps.png).
"""

import sys
from dataclasses import dataclass, field
from typing import Optional

from transformers.hf_argparser import string_to_bool

from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.pretraining import MLM_PROBABILITY
from hf_tbc.report import plan, write_report
from hf_tbc.study import StageFailed, StagePreempted, StudyConfig, run_stages
from hf_tbc.training import PREEMPTED_EXIT_CODE, native_bf16
from hf_tbc.translation.report import plan_translation, write_translation_report


@dataclass
class StudyArguments:
    config: str = field(metadata={"help": "The study's YAML file, or a bundled config by name (cpu_demo, mt_cpu_demo, paper_roberta, tiny)."})
    output_dir: Optional[str] = field(default=None, metadata={"help": "Override the config's output_dir."})
    data_dir: Optional[str] = field(default=None, metadata={"help": "Override the config's data_dir ({data_dir} in paths)."})
    plan_only: bool = field(default=False, metadata={"help": "Probe each size's step time, print the plan, and stop."})


def _flag(value, default: bool) -> bool:
    """A boolean flag of the config read as run_mlm.py's parser reads it, or ``default`` when unset."""
    return default if value is None else string_to_bool(value)


def _plan(config: StudyConfig) -> list[dict]:
    """Each size's probed step time and what the budget buys it, with the settings its recipe will use."""
    if config.task == "translation":
        options = config.translation
        return plan_translation(config.sizes, options["time_budget"], int(options.get("per_device_train_batch_size", 64)),
                                vocab_size=int(options.get("vocab_size", 4000)), architecture=options.get("architecture", "m2m100"),
                                bf16=_flag(options.get("bf16"), native_bf16()))
    pretraining = config.pretraining
    return plan(config.sizes, pretraining["time_budget"], int(pretraining.get("per_device_train_batch_size", 32)),
                int(pretraining.get("block_size", 128)), int(pretraining.get("vocab_size", 8192)),
                architecture=pretraining.get("architecture", "roberta-prelayernorm"),
                sparse_prediction=_flag(pretraining.get("sparse_prediction"), True),
                bf16=_flag(pretraining.get("bf16"), native_bf16()),
                mlm_probability=float(pretraining.get("mlm_probability", MLM_PROBABILITY)))


def main() -> None:
    (args,) = parse_args((StudyArguments,))
    config = StudyConfig.from_yaml(args.config, output_dir=args.output_dir, data_dir=args.data_dir)
    rows = _plan(config)
    print(f"Budget plan for {config.time_budget} per size on this machine:")
    for row in rows:
        tokens = f", ~{row['tokens']:,} tokens" if "tokens" in row else ""
        print(f"  {row['size']:>11}: {row['parameters']:>12,} parameters, {row['step_s']:.3f} s/step -> "
              f"~{row['steps']:,} steps{tokens}")
    if args.plan_only:
        return
    try:
        outcome = run_stages(config)
    except StageFailed as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except StagePreempted as error:
        print(f"preempted: {error}", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)
    report = write_translation_report(config, rows) if config.task == "translation" else write_report(config, rows)
    print(f"ran: {', '.join(outcome['ran']) or 'nothing'}; skipped (complete): {', '.join(outcome['skipped']) or 'nothing'}")
    print(f"report: {report}")


if __name__ == "__main__":
    run_recipe(main)
