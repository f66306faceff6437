#!/usr/bin/env python
"""Run the paper's study for your budget: pretrain every size, finetune, compress, release, and report; or, with a
translation config (task: translation), train every encoder-decoder size and report BLEU against wall-clock.

    python recipes/study.py --config cpu_demo --data_dir DATA     # a bundled config, or the path of your own
    python recipes/study.py --config cpu_demo --data_dir DATA --plan_only   # probe step times, then stop
    python recipes/study.py --config paper_roberta --skip_plan              # train at once, no step-time probe

Stages whose outputs are complete are skipped, so rerunning a killed study resumes it. The study folder
gets report.md and the figures (loss_vs_time.png, ...; for translation bleu_vs_time.png, bleu_vs_steps.png).
"""

import sys
from dataclasses import dataclass, field
from typing import Optional

from hf_tbc.budget import PREEMPTED_EXIT_CODE
from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.errors import UsageError
from hf_tbc.hardware import training_device
from hf_tbc.study.stages import StageFailed, StagePreempted, StudyConfig, run_stages


@dataclass
class StudyArguments:
    config: str = field(
        metadata={
            "help": "The study's YAML file, or a bundled config by name (cpu_demo, mt_cpu_demo, paper_roberta, tiny)."
        }
    )
    output_dir: Optional[str] = field(default=None, metadata={"help": "Override the config's output_dir."})
    data_dir: Optional[str] = field(
        default=None, metadata={"help": "Override the config's data_dir ({data_dir} in paths)."}
    )
    plan_only: bool = field(default=False, metadata={"help": "Probe each size's step time, print the plan, and stop."})
    skip_plan: bool = field(
        default=False,
        metadata={
            "help": "Start training without the budget plan (a few steps of each size, timed on the device the "
            "stages train on: on a GPU the first GPU, else the CPU). The report then has no plan table."
        },
    )


def main() -> None:
    (args,) = parse_args((StudyArguments,))
    config = StudyConfig.from_yaml(args.config, output_dir=args.output_dir, data_dir=args.data_dir)
    if args.skip_plan and args.plan_only:
        raise UsageError("--plan_only prints the plan that --skip_plan leaves out: pass one of them")
    rows = None if args.skip_plan else config.study_task.plan(config)
    if rows is not None:
        print(f"Budget plan for {config.time_budget} per size on this machine ({training_device().type}):")
    for row in rows or ():
        tokens = f", ~{row['tokens']:,} tokens" if "tokens" in row else ""
        print(
            f"  {row['size']:>11}: {row['parameters']:>12,} parameters, {row['step_s']:.3f} s/step -> "
            f"~{row['steps']:,} steps{tokens}"
        )
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
    report = config.study_task.write_report(config, rows)
    print(
        f"ran: {', '.join(outcome['ran']) or 'nothing'}; "
        f"skipped (complete): {', '.join(outcome['skipped']) or 'nothing'}"
    )
    print(f"report: {report}")


if __name__ == "__main__":
    run_recipe(main)
