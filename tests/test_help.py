"""Every recipe and benchmark answers --help: argparse %-formats help texts, so one stray '%' breaks --help only.

Each script runs in this process (``runpy``, as ``python script.py --help`` runs it): starting a fresh interpreter
that imports torch and transformers for every one of them took most of this file's time."""

import runpy
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = sorted(
    str(path.relative_to(REPO))
    for folder in ("recipes", "benchmarks")
    for path in (REPO / folder).glob("*.py")
    if "if __name__ ==" in path.read_text()
)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_and_exits_0(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(REPO / script), "--help"])
    monkeypatch.setattr(sys, "path", [str((REPO / script).parent), *sys.path])  # as the interpreter sets it
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / script), run_name="__main__")
    assert exited.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


# what a measurement looks like (a figure in nats, a speed ratio, a timing, where it was measured): it belongs on the
# flag's docs page, not in --help
LAB_NOTE = r"\d nat\b|\d(\.\d+)? ?[x×] (slower|faster)|\d+(\.\d+)? ms\b|measured (on|at|for)|\bon an? \d-core"


@pytest.mark.parametrize("script", [script for script in SCRIPTS if script.startswith("recipes/")])
def test_help_says_what_each_flag_does_without_measurements(script, monkeypatch, capsys):
    import re

    monkeypatch.setattr(sys, "argv", [str(REPO / script), "--help"])
    monkeypatch.setattr(sys, "path", [str((REPO / script).parent), *sys.path])
    monkeypatch.setattr("shutil.get_terminal_size", lambda *args: __import__("os").terminal_size((1000, 50)))
    with pytest.raises(SystemExit):
        runpy.run_path(str(REPO / script), run_name="__main__")
    notes = [line.strip() for line in capsys.readouterr().out.splitlines() if re.search(LAB_NOTE, line)]
    assert not notes, notes
