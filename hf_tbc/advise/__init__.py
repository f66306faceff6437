"""The size advisor: short probes of each candidate size on this machine, a forecast of each one's loss at the
target budget with an interval, and the recommendation. The winner's probe is the start of its real run.

``probe`` is what a probe recorded, ``probing`` runs the probes (or reuses, or lengthens them), ``ladder`` branches a
probe with a cool-down (the loss a run ending there reaches), ``staging`` probes every size and continues the
contenders within a cost bound, ``ladder_forecast`` forecasts every size from its rungs and its probe's curve, and
``ladder_report`` writes that advice. The earlier method (``--method curve``): ``curve`` fits the fastest size's
curve, ``match`` places each size against it, ``forecast`` forecasts, ``report`` writes its advice. ``outcome`` sets
advice against what the runs then reached; ``run`` is the advisor from flags to advice, for any task of
:mod:`hf_tbc.tasks.registry` that names its loss."""

from .arguments import AdviceArguments
from .forecast import Forecast, crossover_budget, forecast_loss
from .probe import Probe

__all__ = ["AdviceArguments", "Forecast", "Probe", "crossover_budget", "forecast_loss"]
