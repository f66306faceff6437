#!/usr/bin/env python
"""Which size should you train for your budget, on this machine? Probe each size briefly, forecast, decide.

    accelerate launch recipes/advise.py --model_sizes L2-H128,L4-H256,L6-H384 --time_budget 20m \
        --output_dir runs/advice-20m
    accelerate launch recipes/advise.py --task translation --model_sizes E2-D2-H384,E6-D6-H192 \
        --time_budget 10m --train_file pairs.tsv --validation_file dev.tsv --output_dir runs/advice-mt

Each size is trained for --probe_budget (default a tenth of --time_budget) on the schedule of the whole budget, in
OUTPUT_DIR/probes/SIZE, then each one's validation loss at the budget is forecast with an interval. The advice is in
OUTPUT_DIR/advice.md, advice.json and advice.png. Every flag of the task's recipe (run_mlm.py, or run_translation.py
with --task translation: data, recipe, batch size...) is accepted and passed to every probe. The winner's probe is
the start of its real run: continue it with the command advice.md gives, or pass --continue_winner true.
"""

import sys

from hf_tbc.advise import AdviceArguments
from hf_tbc.advise.run import advise
from hf_tbc.cli import parse_args, run_recipe
from hf_tbc.tasks.registry import advised_task


def main() -> dict:
    task = advised_task(sys.argv[1:])
    model_args, data_args, training_args, advice_args = parse_args((*task.arguments, AdviceArguments))
    return advise(task, model_args, data_args, training_args, advice_args, argv=sys.argv[1:])


if __name__ == "__main__":
    run_recipe(main)
