"""The extrapolations of benchmarks/bench_forecast_horizon.py on curves of known form (nothing trained)."""

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_forecast_horizon import across_sizes, log_linear  # noqa: E402


def law(size: float, step: float) -> float:
    return 1.5 + 2.0 * (size / 1e6) ** -0.35 + 3.0 * (step / 1e3) ** -0.5


def test_the_law_across_sizes_recovers_a_curve_of_its_form_where_each_size_alone_cannot():
    sizes = {1e6: 400, 4e6: 150, 16e6: 60}  # steps per probe: the smaller, faster sizes run further
    cuts = [
        (size, [(step / 10, law(size, step), step) for step in range(last // 8, last + 1, last // 8)])
        for size, last in sizes.items()
    ]
    forecast = across_sizes(cuts)
    for size in sizes:
        assert abs(forecast(size, 5000) - law(size, 5000)) < 0.02
    # a straight line in log time through the largest size's short probe overshoots the law's bend
    largest = [(t, loss) for t, loss, _ in cuts[-1][1]]
    assert log_linear(largest, 500.0) < law(16e6, 5000) - 0.1
    assert across_sizes(cuts[:1]) is None  # one size: no law across sizes
