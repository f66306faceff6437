"""The size advisor: short probes of each candidate size on this machine, a forecast of each one's loss at the
target budget with an interval, and the recommendation. The winner's probe is the start of its real run."""

from .arguments import AdviceArguments
from .forecast import Forecast, Probe, crossover_budget, forecast_loss

__all__ = ["AdviceArguments", "Forecast", "Probe", "crossover_budget", "forecast_loss"]
