"""Staged probing within a cost bound: every size probed briefly; the probes that cannot support a forecast yet
(inside their warmup, or still on the unigram plateau) lengthened together, a round at a time, so that the allowance
is shared among the sizes; every probe branched where it ends; the sizes still in contention (their forecast intervals
overlap the leader's) continued to twice as long and branched again, for as long as the whole probing stays within
``allowance_s`` of wall-clock.

What the probing costs is everything it ran (probe segments with their start-up and evaluations, and every branch)
except the leader's probe segments: those are the start of the run the advice recommends, which the user then
continues rather than pays for twice."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from transformers.utils import logging

from ..budget import format_duration
from .ladder import COOL_SHARE, Rung, cool_share, read_ladder, run_branch, schedule_of
from .ladder_forecast import PLATEAU_MARGIN, UNRANKED, LadderForecaster
from .probe import Probe
from .probing import probe_dir, probe_to, read_probe

logger = logging.get_logger(__name__)

EVALUATIONS_PER_PROBE = 8  # evaluations over the first stage's probe length (loss only), for the slope
LONGEST_SHARE = 0.4  # no stage's branch ends beyond this share of the budget
WARMING_UP = "inside its warmup"
WARMUP_MARGIN = 1.1  # a probe lengthened to leave its warmup runs this much past the estimate of twice it


def wall_per_second(wall_s: float, probe: Probe) -> float:
    """The wall-clock a probe has cost per second of training (start-up and evaluations included)."""
    return wall_s / max(probe.train_s, 1e-9)


@dataclass
class Staging:
    """What staged probing measured and spent."""

    probes: dict[str, Probe] = field(default_factory=dict)
    ladders: dict[str, list[Rung]] = field(default_factory=dict)
    probe_wall_s: dict[str, float] = field(default_factory=dict)
    branch_wall_s: dict[str, float] = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)
    schedule: str = "warmup_stable_decay"

    def forecaster(self) -> LadderForecaster:
        return LadderForecaster(list(self.probes.values()), self.ladders, self.schedule)

    def cost_s(self, leader: Optional[str]) -> float:
        """Wall-clock of all probing, the leader's probe segments excepted."""
        spent = sum(self.probe_wall_s.values()) + sum(self.branch_wall_s.values())
        return spent - (self.probe_wall_s.get(leader, 0.0) if leader else 0.0)

    def branch_factor(self) -> float:
        """How much longer than the probe it leaves a branch runs (one plus its cool-down share), as measured."""
        rungs = [rung for ladder in self.ladders.values() for rung in ladder if rung.at_s > 0]
        return max((rung.end_s / rung.at_s for rung in rungs), default=1.0 + COOL_SHARE)

    def next_cost_s(self, size: str, length: float, longer: float) -> float:
        """The wall-clock of lengthening ``size``'s probe from ``length`` to ``longer`` and branching it there,
        scaled from what its last stage cost per second of training."""
        probe = self.probes[size]
        per_second = wall_per_second(self.probe_wall_s[size], probe)
        last_branch = self.ladders[size][-1]
        branch = last_branch.cost_s * (longer / max(last_branch.at_s, 1e-9))
        return per_second * (longer - length) + branch


def probe_arguments(training_args, first_s: float):
    """The probes' arguments: evaluations of the loss alone, ``EVALUATIONS_PER_PROBE`` over the first stage's length
    (and at the same interval after), so that each probe measures its own slope."""
    return dataclasses.replace(
        training_args, eval_every=f"{first_s / EVALUATIONS_PER_PROBE:.3f}s", prediction_loss_only=True
    )


def _held_back(probe: Probe) -> Optional[str]:
    """Why a first probe cannot support a forecast yet (None where it can): its LR still rising, or its loss not yet
    clear of the unigram line (a model there has learned word frequencies only; when it starts to use context is
    not in its probe, so it is probed longer, twice as long at a time)."""
    if not probe.past_warmup():
        return WARMING_UP
    last = probe.final_eval()
    if probe.unigram_loss is not None and last is not None and last > probe.unigram_loss - PLATEAU_MARGIN:
        return "on the unigram plateau"
    return None


def _reuse(staging: Staging, label: str, args, size: str, length: float, probes_dir) -> bool:
    """Reads back the probe and the branch an earlier run of the advisor measured for ``size`` from ``length`` (or
    longer: its held-back probe was lengthened, or it went on since) into ``staging``; False where there are none of
    this budget."""
    budget_s = args.time_budget_seconds
    done = sorted(
        (rung for rung in read_ladder(args.output_dir, size, budget_s) if rung.at_s >= 0.9 * length),
        key=lambda rung: rung.at_s,
    )
    probe = read_probe(probe_dir(args.output_dir, size, probes_dir), size) if done else None
    if probe is None or probe.budget_s != budget_s or probe.probe_s < done[0].at_s * 0.9:
        return False
    logger.warning(f"{label}: reusing its probe and its branch from {format_duration(done[0].at_s)}")
    _record(staging, size, probe, done[0])
    return True


def _record(staging: Staging, size: str, probe: Probe, rung: Rung) -> None:
    staging.probe_wall_s[size] += rung.probe_cost_s
    staging.branch_wall_s[size] += rung.cost_s
    staging.probes[size] = probe
    staging.ladders[size] = [item for item in staging.ladders.get(size, []) if item.at_s != rung.at_s] + [rung]


def _projected_s(staging: Staging, walls: dict, probes: dict, lengths: dict, args) -> float:
    """What the first stage would cost if each held probe in ``probes`` (measured so far: ``walls``) is brought to
    ``lengths`` and branched there, at the wall-clock it has cost per second of training; sizes read back from an
    earlier run count what they cost. As in :meth:`Staging.cost_s`, the leader's probe is the start of its run and
    not a cost; the leader is not known yet, so the cheapest probe is left out (the leader's costs at least that)."""
    cool = cool_share(args)
    segments = {size: wall for size, wall in staging.probe_wall_s.items() if wall > 0}
    spent = sum(staging.branch_wall_s.values())
    for size, probe in probes.items():
        per_second = wall_per_second(walls[size], probe)
        segments[size] = walls[size] + per_second * (lengths[size] - probe.train_s)
        spent += per_second * cool * lengths[size]
    return spent + sum(segments.values()) - min(segments.values(), default=0.0)


def _lengthen_held_back(
    staging, walls, probes, first_s, allowance_s, model_args, data_args, args, train, probes_dir
) -> Optional[dict]:
    """Lengthens the first probes that cannot support a forecast yet (:func:`_held_back`), breadth first: in each
    round every held-back size once, the cheapest per second of training first, one in its warmup to a little over
    twice its warmup (from its LR log and its settings), one on the unigram plateau to twice as long, for as long as
    the first stage with every branch stays within the allowance and no branch passes ``LONGEST_SHARE`` of the
    budget. A size that cannot be lengthened is left where it is. Returns a preempted probe's record, else None."""
    budget_s, cool = args.time_budget_seconds, cool_share(args)
    lengths = {size: first_s for size in probes}
    stuck: set[str] = set()
    while held := [size for size in probes if size not in stuck and _held_back(probes[size])]:
        for size in sorted(held, key=lambda name: wall_per_second(walls[name], probes[name])):
            probe, length = probes[size], lengths[size]
            why = _held_back(probe)
            warm = WARMUP_MARGIN * probe.past_warmup_s() if why == WARMING_UP else 2 * length
            longer = round(max(warm, 1.25 * length), 1)
            planned = {**lengths, size: longer}
            if (
                longer * (1 + cool) > LONGEST_SHARE * budget_s
                or _projected_s(staging, walls, probes, planned, args) > allowance_s
            ):
                stuck.add(size)
                continue
            logger.warning(f"[stage 1] {size}: its probe ended {why}: lengthening it to {format_duration(longer)}")
            started = time.monotonic()
            longer_probe = probe_to(f"[stage 1] {size}", size, longer, model_args, data_args, args, train, probes_dir)
            if isinstance(longer_probe, dict):
                return longer_probe
            walls[size] += time.monotonic() - started
            probes[size], lengths[size] = longer_probe, longer
    return None


def _first_stage(
    staging: Staging,
    sizes: list[str],
    first_s: float,
    allowance_s: float,
    model_args,
    data_args,
    args,
    train,
    probes_dir,
) -> Optional[dict]:
    """Probes every size to ``first_s`` (or reads back what an earlier run of the advisor measured), lengthens the
    probes that cannot support a forecast yet all together (:func:`_lengthen_held_back`: the allowance is shared
    among the sizes, not spent on the first one probed), then branches each probe where it ends. Returns a preempted
    probe's record, else None."""
    walls: dict[str, float] = {}
    probes: dict[str, Probe] = {}
    for index, size in enumerate(sizes, 1):
        label = f"[stage 1, {index}/{len(sizes)}] {size}"
        if _reuse(staging, label, args, size, first_s, probes_dir):
            continue
        started = time.monotonic()
        probe = probe_to(label, size, first_s, model_args, data_args, args, train, probes_dir)
        if isinstance(probe, dict):
            return probe
        if probe is not None:  # None: another process; the main one forecasts
            walls[size], probes[size] = time.monotonic() - started, probe
    preempted = _lengthen_held_back(
        staging, walls, probes, first_s, allowance_s, model_args, data_args, args, train, probes_dir
    )
    if preempted is not None:
        return preempted
    for size, probe in probes.items():
        rung = run_branch(size, probe.checkpoint, probe.train_s, model_args, data_args, args, train, walls[size])
        _record(staging, size, probe, rung)
    return None


def _probe_and_branch(
    staging: Staging, label: str, size: str, length: float, model_args, data_args, args, train, probes_dir
) -> Optional[dict]:
    """Brings ``size``'s probe to ``length`` and branches it there, or reads both back when an earlier run of the
    advisor measured them (its probe may have gone on since). Returns a preempted probe's record, else None."""
    if _reuse(staging, label, args, size, length, probes_dir):
        return None
    started = time.monotonic()
    probe = probe_to(label, size, length, model_args, data_args, args, train, probes_dir)
    if isinstance(probe, dict):
        return probe
    if probe is None:  # another process: the main one forecasts
        return None
    rung = run_branch(
        size, probe.checkpoint, probe.train_s, model_args, data_args, args, train, time.monotonic() - started
    )
    _record(staging, size, probe, rung)
    return None


def staged_probing(
    sizes: list[str],
    first_s: float,
    allowance_s: float,
    model_args,
    data_args,
    training_args,
    train: Callable,
    probes_dir: Optional[str] = None,
) -> Staging | dict:
    """Runs the stages (see the module's doc); returns what they measured, or the record of a preempted probe."""
    budget_s = training_args.time_budget_seconds
    args = probe_arguments(training_args, first_s)
    staging = Staging(
        probe_wall_s={size: 0.0 for size in sizes},
        branch_wall_s={size: 0.0 for size in sizes},
        schedule=schedule_of(training_args),
    )
    preempted = _first_stage(staging, sizes, first_s, allowance_s, model_args, data_args, args, train, probes_dir)
    if preempted is not None:
        return preempted
    active = list(sizes)
    lengths = {size: staging.ladders[size][-1].at_s if size in staging.ladders else first_s for size in sizes}
    while True:
        if staging.stages:
            for index, size in enumerate(active, 1):
                label = f"[stage {len(staging.stages) + 1}, {index}/{len(active)}] {size}"
                preempted = _probe_and_branch(
                    staging, label, size, lengths[size], model_args, data_args, args, train, probes_dir
                )
                if preempted is not None:
                    return preempted
                if size in staging.ladders:
                    lengths[size] = staging.ladders[size][-1].at_s
        if training_args.process_index != 0:
            return staging
        every = staging.forecaster().forecast_all(budget_s)
        forecasts = [row for row in every if row.support not in UNRANKED] or every  # unranked: warmup, plateau
        leader = min(forecasts, key=lambda row: row.forecast_loss)
        contenders = [row.size for row in forecasts if row.forecast_low <= leader.forecast_high]
        stage = {
            "probe_s": {size: round(lengths[size], 1) for size in active},
            "sizes": active,
            "contenders": contenders,
            "leader": leader.size,
        }
        staging.stages.append(stage)
        longer = {size: 2 * lengths[size] for size in contenders}
        if len(contenders) < 2:
            stage["stopped"] = "one size's interval clears every other's"
            break
        if max(longer.values()) * (1 + cool_share(training_args)) > LONGEST_SHARE * budget_s:
            stage["stopped"] = f"a longer stage would branch past {LONGEST_SHARE:.0%} of the budget"
            break
        projected = staging.cost_s(leader.size) + sum(
            staging.next_cost_s(size, lengths[size], longer[size]) for size in contenders
        )
        if leader.size in longer:  # its probe goes on as the start of its run: only its branch counts
            per_second = wall_per_second(staging.probe_wall_s[leader.size], staging.probes[leader.size])
            projected -= per_second * (longer[leader.size] - lengths[leader.size])
        if projected > allowance_s:
            stage["stopped"] = (
                f"continuing the contenders would cost about {format_duration(projected)} of probing in all, over "
                f"the {format_duration(allowance_s)} allowance"
            )
            break
        logger.warning(
            f"Stage {len(staging.stages)}: {', '.join(contenders)} still in contention for the "
            f"{format_duration(budget_s)} budget (their intervals overlap): continuing their probes to twice as long"
        )
        active = contenders
        lengths.update(longer)
    return staging


def read_staging(output_dir: str, folders: dict, budget_s: float, schedule: str, stages: list[dict]):
    """What an earlier run of staged probing in ``output_dir`` measured, read back from each size's probe folder
    (``folders``: size to folder) and ladder, for a forecast redone with other code or drawn against the outcome;
    nothing is trained. None where a size's probe or ladder is missing."""
    staging = Staging(schedule=schedule, stages=stages)
    for size, folder in folders.items():
        probe = read_probe(Path(folder), size)
        rungs = read_ladder(output_dir, size, budget_s)
        if probe is None or not rungs:
            return None
        staging.probes[size], staging.ladders[size] = probe, rungs
        staging.probe_wall_s[size] = sum(rung.probe_cost_s for rung in rungs)
        staging.branch_wall_s[size] = sum(rung.cost_s for rung in rungs)
    return staging
