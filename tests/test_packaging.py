"""hf-tbc as a built wheel: `pip install .` (not editable) works from any directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_release import CARD, chain  # noqa: F401  (the fixture: a real pretrain -> finetune -> compress chain)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed without its dependencies into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(root / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (root / "dist").glob("hf_tbc-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(root / "site"), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return root / "site"


def run_installed(site: Path, cwd: Path, *arguments: str, env=None) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "PYTHONPATH": str(site),
        **(env or {}),
    }  # the wheel first, the repo nowhere on the path
    return subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, timeout=300, cwd=cwd, env=environment
    )


@pytest.mark.slow
def test_the_wheel_carries_recipes_configs_card_template_and_metric(installed, tmp_path):
    probe = (
        "import hf_tbc, hf_tbc.tasks.classification.card as r, hf_tbc.study as s\n"
        "from hf_tbc.metrics import load_accuracy\n"
        "print(hf_tbc.__file__)\n"
        "print(r.DEFAULT_TEMPLATE.is_file(), s.RECIPES.joinpath('run_mlm.py').is_file(), "
        "s.resolve_config('cpu_demo'))\n"
        "print(load_accuracy().compute(predictions=[1, 0], references=[1, 1])['accuracy'])\n"
    )
    done = run_installed(installed, tmp_path, "-c", probe)
    assert done.returncode == 0, done.stderr[-3000:]
    location, files, accuracy = done.stdout.strip().splitlines()
    assert location.startswith(str(installed))
    assert files == f"True True {installed / 'hf_tbc' / 'recipes' / 'configs' / 'cpu_demo.yaml'}"
    assert accuracy == "0.5"
    helped = run_installed(installed, tmp_path, "-m", "hf_tbc.recipes.run_mlm", "--help")
    assert helped.returncode == 0 and "--time_budget" in helped.stdout
    launcher = run_installed(installed, tmp_path, "-m", "hf_tbc.launch", "--help")
    assert launcher.returncode == 0 and launcher.stdout.startswith("usage: hf-tbc-launch")
    entry_points = (next(installed.glob("hf_tbc-*.dist-info")) / "entry_points.txt").read_text()
    assert "hf-tbc-launch = hf_tbc.launch:main" in entry_points


@pytest.mark.slow
def test_a_release_dry_run_from_another_directory_uses_the_installed_template(installed, tmp_path, chain):  # noqa: F811
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_installed(
        installed,
        elsewhere,
        "-m",
        "hf_tbc.recipes.release",
        "--variants",
        str(chain["compressed"] / "dense-onnx-int8"),
        "--dry_run",
        "--hub_organization",
        "org",
        *CARD,
        "--output_dir",
        "release",
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cards = sorted((elsewhere / "release").glob("*/README.md"))
    assert [card.parent.name for card in cards] == [
        "tbc-L2-H32-docs-pairs-dense-fp32",
        "tbc-L2-H32-docs-pairs-dense-onnx-int8",
    ]
    assert all("train-large-then-compress" in card.read_text() for card in cards)
