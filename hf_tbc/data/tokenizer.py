"""One tokenizer trainer: a byte-level BPE vocabulary trained on a task's own text, cached by that text's content.

Every size in a sweep, and every rank of a run, finds the same cached tokenizer, so their losses compare.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

from transformers import PreTrainedTokenizerFast
from transformers.utils import logging

from .files import cache_dir

logger = logging.get_logger(__name__)


def train_bpe_tokenizer(
    batches: Callable[[], Iterable[list[str]]],
    cache_key: str,
    vocab_size: int,
    special_tokens: list[str],
    wrap: Callable[[object], PreTrainedTokenizerFast],
    min_frequency: int = 2,
    save_to: Optional[Path] = None,
) -> Path:
    """Trains a byte-level BPE on the texts ``batches()`` yields, unless the cache holds one for ``cache_key``.

    ``wrap`` turns the trained ``tokenizers.Tokenizer`` into the transformers tokenizer to save (it sets the
    post-processor that frames each text, and the special tokens). Returns the folder to load it from. Saving goes
    through a scratch folder and one rename, so a process that reads the cache never sees half a tokenizer.
    """
    from tokenizers import ByteLevelBPETokenizer

    key = hashlib.sha256(cache_key.encode()).hexdigest()[:16]
    folder = save_to or cache_dir() / "tokenizers" / key
    if (folder / "tokenizer.json").exists():
        return folder
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        batches(), vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special_tokens
    )
    tokenizer = wrap(bpe._tokenizer)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        staging = Path(scratch) / "tokenizer"
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished first; its tokenizer is the same
            if not (folder / "tokenizer.json").exists():
                raise
    logger.info(f"Trained a byte-level BPE tokenizer ({vocab_size} tokens) into {folder}")
    return folder
