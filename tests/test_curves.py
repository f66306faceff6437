import json

from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_tbc.budget.curves import CURVE_KEYS, CurveCallback, plot_curves, plot_run, read_curve


def test_rows_have_every_key_and_resume_drops_rows_after_the_checkpoint(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    curve = CurveCallback(tmp_path)
    state = TrainerState()
    curve.on_train_begin(args, state, TrainerControl())
    for step in (10, 20, 30):
        state.global_step, state.num_input_tokens_seen = step, step * 256
        curve.on_log(args, state, TrainerControl(), logs={"loss": 5.0 - step / 10, "learning_rate": 1e-3})
        curve.on_log(args, state, TrainerControl(), logs={"eval_loss": 6.0 - step / 10})
    curve.on_log(args, state, TrainerControl(), logs={"train_runtime": 3.0})  # summary logs are not curve rows
    rows = read_curve(tmp_path)
    assert len(rows) == 6 and all(tuple(row) == CURVE_KEYS for row in rows)
    assert rows[0]["loss"] == 4.0 and rows[0]["eval_loss"] is None and rows[0]["tokens"] == 2560
    assert rows[1]["loss"] is None and rows[1]["eval_loss"] == 5.0
    assert all(rows[i]["elapsed_s"] <= rows[i + 1]["elapsed_s"] for i in range(5))

    CurveCallback(tmp_path).on_train_begin(args, TrainerState(global_step=20), TrainerControl())
    assert [row["step"] for row in read_curve(tmp_path)] == [10, 10, 20, 20]


def test_plots_are_written(tmp_path):
    rows = [
        {
            "step": s,
            "elapsed_s": 6.0 * s,
            "tokens": 100 * s,
            "loss": 9 - s / 10,
            "lr": 1e-3,
            "eval_loss": 9.5 - s / 10 if s % 2 == 0 else None,
        }
        for s in range(1, 11)
    ]
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "curve.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    figure = plot_curves(
        {"small": tmp_path / "small", "large": [dict(r, eval_loss=r["loss"] - 1) for r in rows]},
        tmp_path / "overlay.png",
        x="step",
    )
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_run(tmp_path / "small").name == "loss_vs_time.png"
    plain = (tmp_path / "small" / "loss_vs_time.png").read_bytes()
    plot_run(tmp_path / "small", unigram_loss=6.5)  # the dashed reference line changes the picture
    assert (tmp_path / "small" / "loss_vs_time.png").read_bytes() != plain
    assert (tmp_path / "small" / "loss_vs_time.png").stat().st_size > 10_000
