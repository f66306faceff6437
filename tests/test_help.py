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
