"""The advisor's own flags; the rest are the task's recipe's (``run_mlm.py``'s, or ``run_translation.py``'s with
``--task translation``), passed to every probe unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..budget import parse_duration
from ..errors import UsageError

PROBE_SHARE = 0.1  # a probe's default share of the target budget (curve)
FIRST_SHARE = 0.05  # the first stage's probe length, as a share of the budget (branches)
ALLOWANCE_SHARE = 1 / 3  # what staged probing may spend in all, as a share of the budget


@dataclass
class AdviceArguments:
    """Which sizes to compare, and how long each probe runs."""

    task: str = field(
        default="mlm",
        metadata={
            "help": "What the sizes are trained for: mlm (pretraining, run_mlm.py's flags) or translation "
            "(run_translation.py's flags and sizes, e.g. E2-D2-H384)."
        },
    )
    model_sizes: str = field(
        default="L2-H128,L4-H256,L6-H384",
        metadata={"help": "Candidate sizes, comma separated (the recipe's --model_size presets)."},
    )
    method: str = field(
        default="branches",
        metadata={
            "help": "branches: probe every size briefly, branch each probe with a cool-down to measure the loss a run "
            "ending there reaches, continue the sizes still in contention and branch again, within "
            "--probe_allowance. curve: one probe per size, its training-loss curve matched against the fastest "
            "size's (the method before branches).",
            "choices": ["branches", "curve"],
        },
    )
    probe_budget: Optional[str] = field(
        default=None,
        metadata={
            "help": "Training time of each probe ('1m'), on the schedule of the whole --time_budget so that it is "
            "the start of the real run. Default: a twentieth of --time_budget for the first stage of branches, a "
            "tenth for curve."
        },
    )
    probe_allowance: Optional[str] = field(
        default=None,
        metadata={
            "help": "Wall-clock that staged probing may spend in all (start-up, evaluations, branches and continued "
            "probes; the recommended size's own probe not counted). Default: a third of --time_budget."
        },
    )
    probes_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "Folder that gets one run folder per size, named after it, for the probes and their "
            "continuations. Default: OUTPUT_DIR/probes. A study passes its pretraining folder, so that each probe is "
            "the start of that size's run."
        },
    )
    continue_winner: bool = field(
        default=False,
        metadata={
            "help": "Continue the recommended size's probe to the deadline after advising (the same as running "
            "the recipe with --resume_from_checkpoint true in its probe folder)."
        },
    )

    def sizes(self) -> list[str]:
        names = [name.strip() for name in self.model_sizes.split(",") if name.strip()]
        if len(names) < 2:
            raise UsageError(f"--model_sizes {self.model_sizes!r} names {len(names)} size: give two or more to compare")
        if len(set(names)) != len(names):
            raise UsageError(f"--model_sizes {self.model_sizes!r} repeats a size: name each once")
        return names

    def probe_seconds(self, time_budget_s: Optional[float]) -> float:
        if time_budget_s is None:
            raise UsageError("the advisor forecasts the loss at a --time_budget: set one, e.g. --time_budget 20m")
        share = FIRST_SHARE if self.method == "branches" else PROBE_SHARE
        seconds = parse_duration(self.probe_budget, "--probe_budget") if self.probe_budget else share * time_budget_s
        if not 0 < seconds < time_budget_s:
            raise UsageError(
                f"--probe_budget {self.probe_budget} must be shorter than --time_budget: about a tenth of it is enough"
            )
        return seconds

    def allowance_seconds(self, time_budget_s: float) -> float:
        if self.probe_allowance is None:
            return ALLOWANCE_SHARE * time_budget_s
        seconds = parse_duration(self.probe_allowance, "--probe_allowance")
        if seconds <= 0:
            raise UsageError(
                f"--probe_allowance {self.probe_allowance} must be positive, e.g. a third of --time_budget"
            )
        return seconds
