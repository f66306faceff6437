import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

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
    from hf_tbc.data import default_corpus

    return default_corpus().read_text().splitlines()[:400]


@pytest.fixture
def python():
    return sys.executable
