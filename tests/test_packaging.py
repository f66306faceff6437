"""hf-tbc as users install it: the built wheel (not editable), in a fresh virtual environment, from any directory."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_release import CARD, chain  # noqa: F401  (the fixture: a real pretrain -> finetune -> compress chain)

tomllib = pytest.importorskip("tomllib")

# the folders that ship under another name (pyproject.toml's package-dir)
RENAMED = {"recipes": "hf_tbc.recipes", "model_cards": "hf_tbc.model_cards"}


def source_packages() -> set[str]:
    """Every folder of the checkout that Python imports as a package: those with an ``__init__.py`` under
    ``hf_tbc/``, and the top-level folders shipped inside it."""
    packages = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "hf_tbc").rglob("__init__.py")}
    packages |= {name for folder, name in RENAMED.items() if (REPO / folder / "__init__.py").is_file()}
    return packages


def test_every_package_of_the_checkout_is_shipped():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    missing = source_packages() - set(setuptools["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert setuptools["package-dir"] == {name: folder for folder, name in RENAMED.items()}


def _dependencies_path() -> str:
    """The site-packages folders of the running interpreter, for a ``.pth`` file: the fresh environment borrows
    hf-tbc's dependencies from them without the network. Paths named in a ``.pth`` file are put on ``sys.path`` but
    their own ``.pth`` files are not run, so an editable install of hf-tbc there stays inactive."""
    folders = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    return "\n".join(folders) + "\n"


@pytest.fixture(scope="module")
def fresh_environment(tmp_path_factory) -> Path:
    """A new virtual environment holding only the wheel built from this checkout (its dependencies borrowed, see
    :func:`_dependencies_path`); returns its Python."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist")]
        + [str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (root / "dist").glob("hf_tbc-*.whl")
    venv.EnvBuilder(with_pip=False).create(root / "env")
    python = root / "env" / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "hf_tbc_dependencies.pth").write_text(_dependencies_path())
    install = subprocess.run(  # without PYTHONPATH: a checkout on it holds the build's egg-info, which pip would
        # take for hf-tbc already installed
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        env={key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")},
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def run_installed(python: Path, cwd: Path, *arguments: str, env=None) -> subprocess.CompletedProcess:
    """``python arguments`` from ``cwd``, with nothing of the checkout on the path."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    environment.update(env or {})
    return subprocess.run(
        [str(python), *arguments], capture_output=True, text=True, timeout=600, cwd=cwd, env=environment
    )


@pytest.mark.slow
def test_the_wheel_ships_every_package_recipe_config_card_template_and_metric(fresh_environment, tmp_path):
    imports = sorted(source_packages())
    probe = (
        f"import importlib, sys\nfor name in {imports!r}: importlib.import_module(name)\n"
        "import hf_tbc, hf_tbc.tasks.classification.card as r, hf_tbc.study.stages as s\n"
        "from hf_tbc.metrics import load_accuracy\n"
        "print(hf_tbc.__file__)\n"
        f"print(any(p.rstrip('/') == {str(REPO)!r} for p in sys.path))\n"
        "print(r.DEFAULT_TEMPLATE.is_file(), s.RECIPES.joinpath('run_mlm.py').is_file(), "
        "s.resolve_config('cpu_demo'))\n"
        "print(load_accuracy().compute(predictions=[1, 0], references=[1, 1])['accuracy'])\n"
    )
    done = run_installed(fresh_environment, tmp_path, "-c", probe)
    assert done.returncode == 0, done.stderr[-3000:]
    location, checkout_on_path, files, accuracy = done.stdout.strip().splitlines()
    installed = fresh_environment.parent.parent
    assert location.startswith(str(installed)) and checkout_on_path == "False"
    assert files.startswith("True True ") and files.endswith(str(Path("hf_tbc", "recipes", "configs", "cpu_demo.yaml")))
    assert files.split()[2].startswith(str(installed))
    assert accuracy == "0.5"
    helped = run_installed(fresh_environment, tmp_path, "-m", "hf_tbc.recipes.run_mlm", "--help")
    assert helped.returncode == 0 and "--time_budget" in helped.stdout
    launcher = run_installed(fresh_environment, tmp_path, "-m", "hf_tbc.launch", "--help")
    assert launcher.returncode == 0 and launcher.stdout.startswith("usage: hf-tbc-launch")
    assert (fresh_environment.parent / "hf-tbc-launch").is_file()


@pytest.mark.slow
def test_the_wheel_runs_the_advisor_and_plans_the_tiny_study_from_another_directory(
    fresh_environment, tmp_path, english_lines
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text.txt").write_text("\n".join(english_lines * 4) + "\n")
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_TBC_CACHE": str(tmp_path / "cache")}
    # no warmup and a loss every step: even a slow machine logs enough losses in 6 s to fit the curves
    flags = "--vocab_size 500 --block_size 32 --per_device_train_batch_size 16 --disable_tqdm true".split()
    flags += "--warmup_steps 0 --warmup_ratio 0 --logging_steps 1".split()
    advised = run_installed(
        fresh_environment,
        tmp_path,
        *"-m hf_tbc.recipes.advise --model_sizes L2-H32,L2-H64 --time_budget 60s --probe_budget 6s".split(),
        *"--method curve".split(),  # 6 s of a tiny model stay near the unigram line: no forecast from branches
        *flags,
        "--train_file",
        str(data / "text.txt"),
        "--output_dir",
        "advice",
        env=env,
    )
    assert advised.returncode == 0, advised.stderr[-3000:]
    assert (tmp_path / "advice" / "advice.json").is_file() and (tmp_path / "advice" / "advice.md").is_file()
    planned = run_installed(
        fresh_environment,
        tmp_path,
        *"-m hf_tbc.recipes.study --config tiny --plan_only true".split(),
        "--data_dir",
        str(data),
        "--output_dir",
        "study",
        env=env,
    )
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "L2-H64" in planned.stdout + planned.stderr


@pytest.mark.slow
def test_a_release_dry_run_from_another_directory_uses_the_installed_template(
    fresh_environment,
    tmp_path,
    chain,  # noqa: F811
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_installed(
        fresh_environment,
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
