"""Forecasting each size's loss at a budget from short probes of all of them.

The method, and what it assumes (each part measured on this project's curves, see docs/advisor.md):

- **Steps, not seconds.** Hardware sets a size's seconds per step, which a probe measures well; the loss after a
  number of steps is the size's own. A size gets ``N = B / step_seconds`` steps in a budget ``B``.
- **One curve shape, sped up per size.** The probe with the most steps (the fastest size) is the reference. Its
  training loss after warmup is fitted as a power law in steps, ``L(n) = floor + scale * n ** -exponent``. Measured
  on runs whose LR decays linearly to the deadline, that fit evaluated at a run's last step forecasts its final loss
  (the decay's gain makes up for the lower LR of the later steps). Only points after warmup and below the unigram
  loss count: above it a model is still learning word frequencies. Another size ``s`` is taken to follow the same
  curve sped up by a factor: ``L_s(n) = L(k_s * n)``, with ``k_s`` matched on its own probe. Larger sizes learn more
  per step (``k > 1``), which is how a larger size can overtake a smaller one at a long enough budget.
- **Intervals.** The reference fit is redone on several windows of its probe and on bootstrap resamples of its
  residuals; ``k_s`` takes every value its probe does not rule out. Where a probe has too few steps past its
  warmup to match ``k_s`` at all, ``k_s`` is assumed between 1 and ``sqrt(parameters_s / parameters_ref)`` and the
  forecast says so. A forecast far beyond the reference's probe (more than ``BREAK_RISK_RATIO`` times its steps)
  carries a warning: MLM curves can break, falling steeply once the model starts to use context, and a break the
  probes did not see is not in the forecast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..errors import UsageError
from .curve import fit_power_law, fit_reference
from .match import Match, match
from .probe import Probe

__all__ = ["BREAK_RISK_RATIO", "Forecast", "Forecaster", "Probe", "crossover_budget", "fit_power_law", "forecast_loss"]

BREAK_RISK_RATIO = 3.0  # forecasts beyond this many times the reference probe's steps carry the break warning


@dataclass
class Forecast(Match):
    """One size's forecast at one budget: the loss at its last step, an interval, and what supports it; with the
    :class:`Match` of its probe it rests on."""

    size: str
    budget_s: float
    steps: float
    forecast_loss: float
    forecast_low: float
    forecast_high: float
    support: str  # "reference" (the fitted curve itself), "matched" (on its probe) or "assumed" (probe too short)
    extrapolation: float  # the forecast's steps on the reference curve, over the reference probe's steps
    notes: list[str] = field(default_factory=list)

    def as_row(self) -> dict:
        return {
            "size": self.size,
            "budget_s": self.budget_s,
            "steps": round(self.steps),
            "forecast_loss": round(self.forecast_loss, 4),
            "forecast_low": round(self.forecast_low, 4),
            "forecast_high": round(self.forecast_high, 4),
            "speedup": round(self.speedup, 3),
            "speedup_low": round(self.speedup_low, 3),
            "speedup_high": round(self.speedup_high, 3),
            "lead": round(self.lead, 4),
            "lead_low": round(self.lead_low, 4),
            "lead_high": round(self.lead_high, 4),
            "form": self.form,
            "support": self.support,
            "extrapolation": round(self.extrapolation, 2),
            "notes": self.notes,
        }


class Forecaster:
    """Fits the reference once, matches every size to it, and forecasts any size at any budget."""

    def __init__(self, probes: Sequence[Probe]):
        if len(probes) < 2:
            raise UsageError("the advisor compares sizes: probe two or more")
        self.probes = list(probes)
        self.reference = fit_reference(max(self.probes, key=lambda probe: probe.steps))
        self.matches = {probe.size: match(probe, self.reference) for probe in self.probes}

    def by_form(self, probe: Probe, budget_s: float, form: str) -> float:
        """The central forecast under one form only ("speed-up" or "lead")."""
        steps, fitted = probe.steps_at(budget_s), self.matches[probe.size]
        if form == "speed-up":
            return self.reference.loss(fitted.speedup * steps)
        return self.reference.loss(steps) - fitted.lead

    def forecast(self, probe: Probe, budget_s: float) -> Forecast:
        steps, fitted = probe.steps_at(budget_s), self.matches[probe.size]
        values = []
        for k in (fitted.speedup_low, fitted.speedup, fitted.speedup_high):
            values.extend(self.reference.range(k * steps))
        low, high = self.reference.range(steps)
        values += [low - fitted.lead_high, high - fitted.lead_low]
        speed_up, lead = self.by_form(probe, budget_s, "speed-up"), self.by_form(probe, budget_s, "lead")
        central = {"speed-up": speed_up, "lead": lead}.get(fitted.form, (speed_up + lead) / 2)
        support = "reference" if probe is self.reference.probe else "matched" if fitted.measured else "assumed"
        extrapolation = max(fitted.speedup, 1.0) * steps / self.reference.probe.steps
        notes = []
        if self.reference.weak:
            notes.append(
                f"the reference ({self.reference.probe.size}) probe had few training losses below the unigram line, "
                "so its curve is fitted on points still near it: a longer --probe_budget would firm it up"
            )
        if support == "assumed":
            notes.append(
                f"its probe had too few steps past warmup to match against the reference: assumed "
                f"{fitted.speedup_low:.1f}-{fitted.speedup_high:.1f}x its steps' worth per step"
            )
        if extrapolation > BREAK_RISK_RATIO:
            notes.append(
                f"{extrapolation:.0f}x beyond the steps the probes saw: a break in the curve after the probes "
                "(the loss falling steeply once the model uses context) is not in the forecast"
            )
        return Forecast(
            **dataclasses.asdict(fitted),
            size=probe.size,
            budget_s=budget_s,
            steps=steps,
            forecast_loss=central,
            forecast_low=min(values + [central]),
            forecast_high=max(values + [central]),
            support=support,
            extrapolation=extrapolation,
            notes=notes,
        )

    def forecast_all(self, budget_s: float) -> list[Forecast]:
        return [self.forecast(probe, budget_s) for probe in self.probes]


def forecast_loss(probes: Sequence[Probe], budget_s: float) -> list[Forecast]:
    """Every probed size's forecast loss at ``budget_s`` of training on this machine."""
    return Forecaster(probes).forecast_all(budget_s)


def crossover_budget(
    forecaster: Forecaster, smaller: Probe, larger: Probe, budgets: Sequence[float], form: Optional[str] = None
) -> Optional[float]:
    """The first of ``budgets`` (ascending) at which ``larger``'s forecast is below ``smaller``'s: the central
    forecasts, or with ``form`` ("speed-up", "lead") that form's alone."""

    def loss(probe: Probe, budget: float) -> float:
        if form is None:
            return forecaster.forecast(probe, budget).forecast_loss
        return forecaster.by_form(probe, budget, form)

    for budget in budgets:
        if loss(larger, budget) < loss(smaller, budget):
            return budget
    return None
