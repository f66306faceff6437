"""benchmarks/bench_advisor.py scoring a budget the advisor could not forecast (nothing trained: the probes are the
fake recipe's of tests/test_advise_ladder.py)."""

import argparse
import json
import sys

from tests.conftest import REPO
from tests.test_advise_ladder import mid_loss, stage

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_advisor import NO_ADVICE, reforecast, result_lines, score, summarize  # noqa: E402


def test_a_budget_the_advisor_gave_no_advice_for_is_scored_on_the_size_its_probes_measured_ahead(tmp_path):
    sizes = ["L2-H64", "L2-H128"]
    folder = tmp_path / "10m"
    stage(folder, sizes, allowance_s=1e-9, warmup_s=20.0)  # both probes inside their warmup: no forecast
    (folder / NO_ADVICE).write_text(json.dumps({"error": "error: no forecast for 10m00s"}) + "\n")
    finals = {"L2-H64": 6.1, "L2-H128": 6.3}
    for size, loss in finals.items():  # each probe continued to the deadline: the run the advice is about
        (folder / "probes" / size / "run_summary.json").write_text(json.dumps({"final_eval_loss": loss, "steps": 9}))
    args = argparse.Namespace(
        task="mlm",
        model_sizes=",".join(sizes),
        method="branches",
        probe_share=0.05,
        output_dir=str(tmp_path),
        actuals_from=None,
        seeds=[],
        spread_budget="10m",
    )
    reforecast(args, "10m", folder)
    advice = json.loads((folder / "advice.json").read_text())
    assert not (folder / NO_ADVICE).exists() and advice["basis"] == "measured"
    assert advice["recommended_size"] == "L2-H64" and advice["probe_s"] == 30.0  # a twentieth of the budget
    assert advice["measured"]["losses"]["L2-H128"] == round(mid_loss("L2-H128", 30.0), 4)
    rows, picks = score(args, ["10m"], margin=0.0)
    assert picks[0]["advisor"] == "L2-H64" and picks[0]["advisor_basis"] == "measured"
    assert all(row["forecast_loss"] is None for row in rows)  # a pick, not a forecast: no row is scored as one
    summary = summarize(rows, picks, 0.0, {})
    assert summary["right"]["advisor"] == 1 and summary["advisor_without_forecast"] == {"picks": 1, "right": 1}
    text = "\n".join(result_lines(args, rows, picks, summary, ["10m"]))
    assert "| L2-H64 (measured, no forecast) |" in text
    assert "1 of its picks were made without a forecast (the size the probes measured ahead), 1 of them right" in text
