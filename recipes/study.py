#!/usr/bin/env python
"""Run the paper's study for your budget: pretrain every size, finetune, compress, release, and report.

    python recipes/study.py --config cpu_demo --data_dir DATA     # a bundled config, or the path of your own
    python recipes/study.py --config cpu_demo --data_dir DATA --plan_only   # probe step times, then stop

Stages whose outputs are complete are skipped, so rerunning a killed study resumes it. The study folder
gets report.md, loss_vs_time.png, loss_vs_steps.png and accuracy_vs_size.png.
"""

import sys
from dataclasses import dataclass, field
from typing import Optional

from transformers.hf_argparser import string_to_bool

from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.report import plan, write_report
from hf_tbc.study import StageFailed, StagePreempted, StudyConfig, run_stages
from hf_tbc.training import PREEMPTED_EXIT_CODE, native_bf16


@dataclass
class StudyArguments:
    config: str = field(metadata={"help": "The study's YAML file, or a bundled config by name (cpu_demo, paper_roberta, tiny)."})
    output_dir: Optional[str] = field(default=None, metadata={"help": "Override the config's output_dir."})
    data_dir: Optional[str] = field(default=None, metadata={"help": "Override the config's data_dir ({data_dir} in paths)."})
    plan_only: bool = field(default=False, metadata={"help": "Probe each size's step time, print the plan, and stop."})


def _flag(value, default: bool) -> bool:
    """A boolean flag of the config read as run_mlm.py's parser reads it, or ``default`` when unset."""
    return default if value is None else string_to_bool(value)


def main() -> None:
    (args,) = parse_args((StudyArguments,))
    config = StudyConfig.from_yaml(args.config, output_dir=args.output_dir, data_dir=args.data_dir)
    pretraining = config.pretraining
    rows = plan(config.sizes, pretraining["time_budget"], int(pretraining.get("per_device_train_batch_size", 32)),
                int(pretraining.get("block_size", 128)), int(pretraining.get("vocab_size", 8192)),
                architecture=pretraining.get("architecture", "roberta-prelayernorm"),
                sparse_prediction=_flag(pretraining.get("sparse_prediction"), True),
                bf16=_flag(pretraining.get("bf16"), native_bf16()))
    print(f"Budget plan for {config.pretraining['time_budget']} per size on this machine:")
    for row in rows:
        print(f"  {row['size']:>9}: {row['parameters']:>12,} parameters, {row['step_s']:.3f} s/step -> "
              f"~{row['steps']:,} steps, ~{row['tokens']:,} tokens")
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
    report = write_report(config, rows)
    print(f"ran: {', '.join(outcome['ran']) or 'nothing'}; skipped (complete): {', '.join(outcome['skipped']) or 'nothing'}")
    print(f"report: {report}")


if __name__ == "__main__":
    run_recipe(main)
