"""Forecasting each size's loss at the budget from its cool-down branches and its probe's own evaluations.

- **The level is measured.** The last rung of a size (:mod:`.ladder`) is the loss a run that ended there reaches:
  no assumption about how the end of a schedule changes the loss.
- **The slope is measured.** How fast that loss falls per doubling of the training time is read from the probe's
  validation losses over its last doubling (a probe evaluates often, so that slope rests on many points), and from
  the branches themselves where there are two or more. On this project's MLM runs the mid-schedule validation loss
  and the branches' losses fall at the same rate per doubling (within 0.01 nat).
- **The schedule's shift.** Under warmup_stable_decay (the recipes' default) a branch is a complete run of its
  length: the same peak LR, then the same decay over the last fifth. Only the warmup differs (the probe's is a share
  of the whole budget), which leaves an early rung slightly behind a run of its own length: the forecast reads the
  end-of-run curve at the budget, the interval allows shifts up to ``SHIFTS[WSD][2]``. Under a schedule that decays
  from the start (linear), a branch ending at ``T`` reached the loss of a complete run of about 1.3 ``T`` on the MLM
  grid's runs (docs/benchmarks/advisor_turn_mlm; 1.26 to 1.38 across sizes and lengths) and more early in
  translation: the forecast reads the curve at ``B / 1.3`` and the interval takes shifts of 1.1 to 2.
- **A straight line in log time.** On the translation grid's 8-minute runs (docs/benchmarks/advisor_turn_translation)
  the validation loss at the peak LR fell 0.68 to 0.75 nat per doubling from 24 to 384 seconds for E1-D1-H128, and
  on the MLM grid the end-of-run losses fell 0.155 to 0.23 nat per doubling from 1 to 8 minutes: straight in log
  time within a few hundredths per doubling, where a power law with a floor fitted to a probe's first seconds took a
  short pause of the loss (translation models linger near the unigram line before they use the source) for its
  floor and forecast a plateau. The central forecast is the straight line; ``shapes`` keeps the power laws for
  study.
- **What a straight line misses.** Early (near the unigram loss) the curve can steepen, later it flattens (the
  smallest translation size's slope fell from 0.70 to 0.48 nat per doubling by 6 minutes). The interval takes the
  change of slope the probe measured between its last two doublings and the rungs' own slope, carried to the
  budget, and at least ``SLOPE_DRIFT`` nat per doubling per doubling either way; plus ``LEVEL_NOISE`` for the
  rung's own evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import UsageError
from .curve import fit_power_law
from .ladder import Rung
from .probe import Probe

WSD = "warmup_stable_decay"
SHIFTS = {WSD: (1.0, 1.0, 1.15), "other": (1.3, 1.1, 2.0)}  # central, lowest, highest
SLOPE_DRIFT = 0.04  # nat per doubling, per doubling: the least change of slope the interval allows
LEVEL_NOISE = 0.02  # nat: a rung's evaluation against a rerun of it
MIN_POINTS = 3  # evaluations in the probe's last doubling that a measured slope needs
PLATEAU_MARGIN = 0.1  # nat: a last rung less than this below the unigram loss is still on the plateau
UNRANKED = ("too short", "on the plateau")  # supports that give no forecast
CENTRAL_SHAPE = "straight in log time"  # the curve the central forecast follows (see shapes())


@dataclass
class EndForecast:
    """One size's forecast at one budget from its ladder."""

    size: str
    budget_s: float
    steps: float
    forecast_loss: float
    forecast_low: float
    forecast_high: float
    slope: float  # nat per doubling of training time, at the last rung
    curvature: Optional[float]  # change of that slope per doubling, where the probe measured it
    rung_end_s: float
    rung_loss: float
    rungs: int
    support: str  # "branches", "assumed" (one rung, too few evaluations); unranked: "too short", "on the plateau"
    notes: list[str] = field(default_factory=list)

    def as_row(self) -> dict:
        """The row of ``advice.json``; a probe too short to forecast from gives no loss and no interval."""
        shown = self.support not in UNRANKED
        return {
            "size": self.size,
            "budget_s": self.budget_s,
            "steps": round(self.steps),
            "forecast_loss": round(self.forecast_loss, 4) if shown else None,
            "forecast_low": round(self.forecast_low, 4) if shown else None,
            "forecast_high": round(self.forecast_high, 4) if shown else None,
            "slope_per_doubling": round(self.slope, 4),
            "slope_change_per_doubling": None if self.curvature is None else round(self.curvature, 4),
            "last_rung_s": round(self.rung_end_s, 1),
            "last_rung_loss": round(self.rung_loss, 4),
            "rungs": self.rungs,
            "support": self.support,
            "notes": self.notes,
        }


def _slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of loss against log2 time."""
    x = np.log2([seconds for seconds, _ in points])
    y = np.asarray([loss for _, loss in points])
    return float(np.polyfit(x, y, 1)[0])


def shapes(probe: Probe, start_s: float, budget_s: float) -> dict[str, float]:
    """How much the probe's validation loss falls from ``start_s`` to ``budget_s`` under each curve the probe
    supports: a power law with a floor (``floor + scale * t ** -exponent``, the loss flattening as it goes) fitted to
    its evaluations over its last three doublings and over its last two, and a straight line in log time through its
    last doubling; evaluations from its warmup (the LR still rising) left out. Empty where the probe has too few
    evaluations."""
    warm = probe.warmup_end_s()  # before it the LR was still rising: those losses say little of the curve after
    points = [(seconds, loss) for _, seconds, loss in probe.evaluations if seconds > 0 and seconds >= warm]
    if not points:
        return {}
    end = points[-1][0]
    falls = {}
    for name, doublings in (("power law, last 3 doublings", 3), ("power law, last 2 doublings", 2)):
        window = [point for point in points if point[0] >= end / 2**doublings]
        if len(window) >= MIN_POINTS + 1:
            fit = fit_power_law([seconds for seconds, _ in window], [loss for _, loss in window])
            falls[name] = float(fit(budget_s) - fit(start_s))
    last = [point for point in points if point[0] >= end / 2]
    if len(last) >= MIN_POINTS:
        falls["straight in log time"] = _slope(last) * math.log2(budget_s / start_s)
    return falls


def measured_slopes(probe: Probe) -> tuple[Optional[float], Optional[float]]:
    """The probe's validation-loss slope per doubling over its last doubling, and its change from the doubling
    before (None where those doublings hold fewer than ``MIN_POINTS`` evaluations)."""
    warm = probe.warmup_end_s()
    points = [(seconds, loss) for _, seconds, loss in probe.evaluations if seconds > 0 and seconds >= warm]
    if not points:
        return None, None
    end = points[-1][0]
    last = [point for point in points if point[0] >= end / 2]
    before = [point for point in points if end / 4 <= point[0] <= end / 2]
    slope = _slope(last) if len(last) >= MIN_POINTS else None
    earlier = _slope(before) if slope is not None and len(before) >= MIN_POINTS else None
    return slope, None if earlier is None else slope - earlier


class LadderForecaster:
    """Forecasts every size at any budget from its probe and its rungs."""

    def __init__(
        self,
        probes: Sequence[Probe],
        ladders: dict[str, Sequence[Rung]],
        schedule: str = WSD,
        central: str = CENTRAL_SHAPE,
    ):
        if len(probes) < 2:
            raise UsageError("the advisor compares sizes: probe two or more")
        self.probes = list(probes)
        self.ladders = {size: sorted(rungs, key=lambda rung: rung.end_s) for size, rungs in ladders.items()}
        self.schedule, self.central = schedule, central
        self.shift, *self.shift_range = SHIFTS[WSD if schedule == WSD else "other"]
        missing = [probe.size for probe in self.probes if not self.ladders.get(probe.size)]
        if missing:
            raise UsageError(f"no cool-down branch of {', '.join(missing)}: rerun the advisor to branch its probe")

    def slope(self, probe: Probe) -> tuple[float, Optional[float], str]:
        """Per doubling: the slope at the last rung, the change of slope, and what they rest on."""
        rungs = self.ladders[probe.size]
        measured, change = measured_slopes(probe)
        between = None
        if len(rungs) >= 2:
            (t0, l0), (t1, l1) = (rungs[-2].end_s, rungs[-2].loss), (rungs[-1].end_s, rungs[-1].loss)
            between = (l1 - l0) / math.log2(t1 / t0)
        if measured is not None:
            return measured, change, "branches"
        if between is not None:
            return between, None, "branches"
        return 0.0, None, "assumed"

    def forecast(self, probe: Probe, budget_s: float) -> EndForecast:
        rungs = self.ladders[probe.size]
        last = rungs[-1]
        slope, change, support = self.slope(probe)
        notes = []

        def at(shift: float, bend: float) -> float:
            doublings = math.log2(budget_s / shift / last.end_s)
            return last.loss + slope * doublings + bend * doublings * abs(doublings) / 2

        bends = [-SLOPE_DRIFT, SLOPE_DRIFT, 0.0]
        if change is not None:
            bends.append(change)
        values = [at(shift, bend) for shift in self.shift_range for bend in bends]
        falls = shapes(probe, last.end_s, budget_s / self.shift)
        central = last.loss + falls[self.central] if self.central in falls else at(self.shift, 0.0)
        if len(rungs) >= 2:  # the rungs' own slope, where it differs from the probe's
            between = (last.loss - rungs[-2].loss) / math.log2(last.end_s / rungs[-2].end_s)
            values += [last.loss + between * math.log2(budget_s / shift / last.end_s) for shift in self.shift_range]
        if not probe.past_warmup():
            support = "too short"
            notes.append(f"its probe ended inside its warmup ({probe.steps} steps, the LR still rising)")
        if self.schedule != WSD:
            notes.append(
                f"the runs decay their LR under {self.schedule}, not warmup_stable_decay: a branch is then not a run "
                "of its length, and the shift between the two is an estimate (the interval allows 1.1 to 2x)"
            )
        if support == "assumed":
            notes.append(
                "its probe held too few evaluations and one branch: the loss is assumed to stay at its last rung, "
                "a longer --probe_budget would measure how fast it falls"
            )
            values.append(last.loss - 1.0)
        if (
            support != "too short"
            and probe.unigram_loss is not None
            and last.loss > probe.unigram_loss - PLATEAU_MARGIN
        ):
            support = "on the plateau"
            notes.append(
                f"its last rung ({last.loss:.3f}) is not yet {PLATEAU_MARGIN} below the unigram loss "
                f"({probe.unigram_loss:.3f}): a model there has learned word frequencies only, and how fast it falls "
                "once it uses context is not in its probe"
            )
        ratio = budget_s / last.end_s
        if ratio > 16:
            notes.append(f"{ratio:.0f}x beyond the last rung: the curve can bend in ways its probe did not show")
        return EndForecast(
            size=probe.size,
            budget_s=budget_s,
            steps=probe.steps_at(budget_s),
            forecast_loss=central,
            forecast_low=min(values) - LEVEL_NOISE,
            forecast_high=max(values) + LEVEL_NOISE,
            slope=slope,
            curvature=change,
            rung_end_s=last.end_s,
            rung_loss=last.loss,
            rungs=len(rungs),
            support=support,
            notes=notes,
        )

    def forecast_all(self, budget_s: float) -> list[EndForecast]:
        return [self.forecast(probe, budget_s) for probe in self.probes]
