"""The reference curve: the probe with the most steps, its training loss past warmup fitted as a power law in steps,
``L(n) = floor + scale * n ** -exponent``, refitted on windows and bootstrap resamples for its range."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UsageError
from .probe import Probe

_EXPONENTS = np.logspace(-2.5, 0.5, 90)
_FLOOR_POINTS = 90


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


def past_warmup(probe: Probe, below_unigram: bool = True) -> list[tuple[int, float]]:
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
    points, weak = past_warmup(probe), False
    if len(points) < MIN_REFERENCE_POINTS:
        everything = past_warmup(probe, below_unigram=False)
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
