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

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import UsageError

BREAK_RISK_RATIO = 3.0  # forecasts beyond this many times the reference probe's steps carry the break warning
_EXPONENTS = np.logspace(-2.5, 0.5, 90)
_FLOOR_POINTS = 90


@dataclass
class Probe:
    """One size's probe: its record and the curve it logged (``losses``: training loss rows ``(step, train_s,
    loss)``; ``evaluations``: ``(step, train_s, eval_loss)``)."""

    size: str
    steps: int
    train_s: float
    budget_s: float
    probe_s: float
    losses: list[tuple[int, float, float]]
    evaluations: list[tuple[int, float, float]] = field(default_factory=list)
    learning_rates: list[tuple[int, float]] = field(default_factory=list)
    parameters: Optional[int] = None
    unigram_loss: Optional[float] = None
    checkpoint: Optional[str] = None

    def step_seconds(self) -> float:
        """Seconds per step over the later half of the probe: its first steps are slower (kernels are built for
        each new shape as it first comes), which a long run pays once and a short probe would count again and
        again. Falls back to the whole probe after its first logged row, then to the whole probe."""
        if self.steps <= 0:
            raise UsageError(f"the {self.size} probe made no optimizer step: give it a longer --probe_budget")
        rows = [(step, seconds) for step, seconds, _ in self.losses if step < self.steps]
        later = [row for row in rows if row[0] >= self.steps / 2]
        for start in (later[:1], rows[:1]):
            if start and self.train_s > start[0][1]:
                step, seconds = start[0]
                return (self.train_s - seconds) / (self.steps - step)
        return self.train_s / self.steps

    def steps_at(self, budget_s: float) -> float:
        """Optimizer steps this size makes in ``budget_s`` of training on this machine."""
        return self.steps + max(budget_s - self.train_s, 0.0) / self.step_seconds()

    def final_eval(self) -> Optional[float]:
        return self.evaluations[-1][2] if self.evaluations else None

    def warmup_end(self) -> int:
        """The step where the logged LR peaked: the end of warmup (0 if no LR was logged)."""
        return max(self.learning_rates, key=lambda row: row[1])[0] if self.learning_rates else 0


@dataclass
class PowerLaw:
    floor: float
    scale: float
    exponent: float

    def __call__(self, steps):
        return self.floor + self.scale * np.power(np.maximum(steps, 1.0), -self.exponent)


def _grid_fit(x: np.ndarray, y: np.ndarray, floors: np.ndarray, exponents: np.ndarray) -> tuple[int, int, np.ndarray]:
    basis = np.power(x[None, :], -exponents[:, None])  # exponents × points
    targets = y[None, :] - floors[:, None]  # floors × points
    scale = np.maximum((targets @ basis.T) / (basis * basis).sum(axis=1)[None, :], 0.0)  # floors × exponents
    fitted = floors[:, None, None] + scale[:, :, None] * basis[None, :, :]
    error = ((fitted - y[None, None, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(np.argmin(error), error.shape)
    return int(i), int(j), scale


def fit_power_law(steps: Sequence[float], losses: Sequence[float]) -> PowerLaw:
    """Least-squares ``floor + scale * n**-exponent`` (floor in [0, min loss), scale >= 0): a coarse grid of floors
    and exponents, then a fine one around the best cell, with the scale solved exactly for each: no optimizer, no
    starting point to get wrong."""
    x, y = np.asarray(steps, float), np.asarray(losses, float)
    if len(x) < 3:
        raise ValueError("a power law needs at least three points")
    top = max(y.min() - 0.01, 0.0)
    floors, exponents = np.linspace(0.0, top, _FLOOR_POINTS), _EXPONENTS
    i, j, _ = _grid_fit(x, y, floors, exponents)
    floor_step, exponent_step = floors[1] - floors[0], math.log(exponents[1] / exponents[0])
    floors = np.clip(np.linspace(floors[i] - floor_step, floors[i] + floor_step, 41), 0.0, top)
    exponents = np.exp(np.linspace(math.log(exponents[j]) - exponent_step, math.log(exponents[j]) + exponent_step, 41))
    i, j, scale = _grid_fit(x, y, floors, exponents)
    return PowerLaw(float(floors[i]), float(scale[i, j]), float(exponents[j]))


def _past_warmup(probe: Probe, below_unigram: bool = True) -> list[tuple[int, float]]:
    """The training-loss points that say how a size learns: after the LR's peak (warmup) and, with
    ``below_unigram``, below the unigram loss (above it a model is still learning word frequencies, which every size
    does in a few dozen steps)."""
    ceiling = probe.unigram_loss if below_unigram and probe.unigram_loss is not None else math.inf
    start = max(probe.warmup_end(), 10)
    return [(step, loss) for step, _, loss in probe.losses if step >= start and loss < ceiling]


MIN_REFERENCE_POINTS = 5


@dataclass
class Reference:
    """The fastest size's fitted curve, the spread of refits, and the eval-minus-training offset at its end.
    ``weak`` when its probe had too few points below the unigram loss and the fit took its later points above it."""

    probe: Probe
    fit: PowerLaw
    refits: list[PowerLaw]
    offset: float
    noise: float
    weak: bool = False

    def loss(self, steps: float) -> float:
        return float(self.fit(steps)) + self.offset

    def range(self, steps: float) -> tuple[float, float]:
        values = [float(fit(steps)) + self.offset for fit in self.refits]
        return min(values), max(values)


def fit_reference(probe: Probe, resamples: int = 100, seed: int = 0) -> Reference:
    """Fits the reference curve on its points past warmup and below the unigram loss (or, when fewer than
    ``MIN_REFERENCE_POINTS`` are, on the later half of its points past warmup), refits it on the later three quarters
    and half of them and on bootstrap resamples of the residuals."""
    points, weak = _past_warmup(probe), False
    if len(points) < MIN_REFERENCE_POINTS:
        everything = _past_warmup(probe, below_unigram=False)
        points, weak = everything[len(everything) // 2 :], True
    if len(points) < 3:
        raise UsageError(
            f"the {probe.size} probe logged {len(points)} training losses past its warmup, too few to fit a curve: "
            "give the probes a longer --probe_budget or log more often (--logging_steps)"
        )
    x = np.array([step for step, _ in points], float)
    y = np.array([loss for _, loss in points], float)
    fit = fit_power_law(x, y)
    residuals = y - fit(x)
    noise = float(np.std(residuals, ddof=1)) if len(residuals) > 1 else 0.0
    refits = [fit]
    for start in (len(points) // 4, len(points) // 2):
        if len(points) - start >= 3 and start > 0:
            refits.append(fit_power_law(x[start:], y[start:]))
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        refits.append(fit_power_law(x, fit(x) + rng.choice(residuals, size=len(residuals), replace=True)))
    final = probe.final_eval()
    offset = final - float(fit(probe.evaluations[-1][0])) if final is not None else 0.0
    return Reference(probe, fit, refits, offset, noise, weak)


@dataclass
class Match:
    """How a size's probe sits against the reference curve, in two forms a short probe tells apart poorly:

    - a per-step **speed-up** ``k``, ``L_s(n) = L(k * n)``: its lead over the reference shrinks as both learn, and
      the ranking of sizes by wall-clock never turns;
    - a **lead** ``delta``, ``L_s(n) = L(n) - delta``: its lead stays (as a scaling law's capacity term does), and a
      larger, slower size overtakes once the reference's curve flattens.

    Each has a best value and the range its probe does not rule out; ``form`` names the one the central forecast
    follows ("both": their mean, when neither fits clearly better). ``measured`` is False when the probe had too few
    steps past warmup to match, and the ranges are assumed."""

    speedup: float
    speedup_low: float
    speedup_high: float
    lead: float
    lead_low: float
    lead_high: float
    form: str
    measured: bool


_SPEEDUPS = np.exp(np.linspace(math.log(0.25), math.log(50.0), 400))
_CLEARLY_BETTER = 0.5  # a form is chosen alone when its squared misfit is under half the other's


def _allowed(values: np.ndarray, error: np.ndarray, noise: float) -> tuple[float, float, float]:
    """The best value and the range within about two standard errors of it, for one fitted parameter."""
    best = int(np.argmin(error))
    allowed = values[error <= error[best] + 4.0 * noise**2]
    return float(values[best]), float(allowed.min()), float(allowed.max())


def match(probe: Probe, reference: Reference) -> Match:
    if probe is reference.probe:
        return Match(1.0, 1.0, 1.0, 0.0, 0.0, 0.0, "reference", True)
    points = _past_warmup(probe)
    if len(points) < 3:
        ratio = probe.parameters / reference.probe.parameters if probe.parameters and reference.probe.parameters else 9
        high = max(math.sqrt(ratio), 1.0)
        end = max(probe.steps, 1)
        lead_high = max(float(reference.fit(end) - reference.fit(high * end)), 0.0)
        return Match(math.sqrt(high), 1.0, high, lead_high / 2, 0.0, lead_high, "both", False)
    x = np.array([step for step, _ in points], float)
    y = np.array([loss for _, loss in points], float)
    speed_error = ((reference.fit(_SPEEDUPS[:, None] * x[None, :]) - y[None, :]) ** 2).sum(axis=1)
    leads = np.linspace(-1.0, 3.0, 801)
    lead_error = ((reference.fit(x)[None, :] - leads[:, None] - y[None, :]) ** 2).sum(axis=1)
    dof = max(len(x) - 1, 1)
    noise = max(reference.noise, math.sqrt(min(speed_error.min(), lead_error.min()) / dof), 1e-3)
    speed, lead = _allowed(_SPEEDUPS, speed_error, noise), _allowed(leads, lead_error, noise)
    if speed_error.min() < _CLEARLY_BETTER * lead_error.min():
        form = "speed-up"
    elif lead_error.min() < _CLEARLY_BETTER * speed_error.min():
        form = "lead"
    else:
        form = "both"
    return Match(*speed, *lead, form, True)


@dataclass
class Forecast:
    """One size's forecast at one budget: the loss at its last step, an interval, and what supports it."""

    size: str
    budget_s: float
    steps: float
    forecast_loss: float
    forecast_low: float
    forecast_high: float
    speedup: float
    speedup_low: float
    speedup_high: float
    lead: float
    lead_low: float
    lead_high: float
    form: str  # what the central forecast follows: "reference", "speed-up", "lead" or "both"
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
            size=probe.size,
            budget_s=budget_s,
            steps=steps,
            forecast_loss=central,
            forecast_low=min(values + [central]),
            forecast_high=max(values + [central]),
            speedup=fitted.speedup,
            speedup_low=fitted.speedup_low,
            speedup_high=fitted.speedup_high,
            lead=fitted.lead,
            lead_low=fitted.lead_low,
            lead_high=fitted.lead_high,
            form=fitted.form,
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
