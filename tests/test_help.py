"""Every recipe and benchmark answers --help: argparse %-formats help texts, so one stray '%' breaks --help only."""

import subprocess
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
def test_help_prints_and_exits_0(script):
    done = subprocess.run(
        [sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout and "Traceback" not in done.stderr
