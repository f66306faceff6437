import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# the flags of a tiny run_mlm.py run: a 2-layer, 32-wide model on 32-token blocks, a step every few milliseconds
TINY_MLM = (
    "--model_size L2-H32 --vocab_size 600 --block_size 32 --per_device_train_batch_size 8 --logging_steps 1 "
    "--disable_tqdm true --dataloader_num_workers 0"
).split()

# accelerate launch with one process and no questions asked: what the end-to-end tests start recipes with
ACCELERATE_ONE_PROCESS = [
    sys.executable,
    *"-m accelerate.commands.launch --num_processes 1 --num_machines 1".split(),
    *"--mixed_precision no --dynamo_backend no".split(),
]


def pytest_configure(config):
    """Under pytest-xdist each worker owns its share of the cores (its recipes and their launchers inherit it, and
    torch sizes its thread pool to it): tests that train for a wall-clock budget then get the same machine however
    busy the other worker is, instead of two thread pools oversubscribing every core."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        os.sched_setaffinity(0, cores[int(worker.removeprefix("gw")) % count :: count])


# Tests never touch the network, and keep their caches out of the user's home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """One hf-tbc cache (built-in corpus, tokenizers) for the whole session, in a temporary folder."""
    cache = tmp_path_factory.mktemp("hf_tbc_cache")
    os.environ["HF_TBC_CACHE"] = str(cache)
    yield cache


@pytest.fixture
def english_lines():
    """Real English sentences from this Python's own documentation, made on the spot."""
    from hf_tbc.tasks.mlm.corpus import default_corpus

    return default_corpus().read_text().splitlines()[:400]


@pytest.fixture
def python():
    return sys.executable


def sigterm_after_first_log(command: list[str], output_dir: Path, wait: float = 240) -> tuple[int, str]:
    """Starts ``command``, waits until it has written ``curve.jsonl`` in ``output_dir`` and trained 2 s more, sends
    SIGTERM (as a cluster's preemption does) and returns the exit code and stderr."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + wait
    while not (Path(output_dir) / "curve.jsonl").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.2)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=120)[1]
    return process.returncode, stderr
