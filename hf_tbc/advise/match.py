"""How each size's probe sits against the reference curve: a per-step speed-up or a lead, with the range its probe
does not rule out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .curve import Reference, past_warmup
from .probe import Probe


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
    form: str  # what the central forecast follows: "reference", "speed-up", "lead" or "both"
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
    points = past_warmup(probe)
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
