"""Data files on disk: the flags that name them, the checks before loading, the loader, and hf-tbc's cache folder.

Every task reads local files the same way: several per flag (comma-separated), text, CSV, TSV or JSON(L), UTF-8, and
a one-line error naming the flag for a file that is missing, empty, not UTF-8 or of an unknown kind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from datasets import Dataset, load_dataset

from ..errors import UsageError


def cache_dir() -> Path:
    """Where hf-tbc caches the built-in corpus and trained tokenizers (``$HF_TBC_CACHE`` or ``~/.cache/hf_tbc``)."""
    return Path(os.environ.get("HF_TBC_CACHE", Path.home() / ".cache" / "hf_tbc"))


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)


_BUILDERS = {".txt": "text", ".text": "text", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


def data_files(value: Optional[str]) -> list[str]:
    """The files of a ``--train_file``-style flag: one path, or several separated by commas."""
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def check_utf8(path: str, flag: str) -> None:
    """``UsageError`` naming the first offending byte when ``path`` is not UTF-8 text (read in chunks)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise UsageError(
                    f"{flag} {path} is not UTF-8 text (byte 0x{chunk[error.start]:02x} at offset "
                    f"{offset + error.start:,}): convert it, e.g. `iconv -f latin1 -t utf-8`"
                ) from None
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path} ends inside a UTF-8 character: the file is cut off or not UTF-8") from None


def data_file_builder(path: str, split: str) -> tuple[str, tuple]:
    """The ``datasets`` builder that reads ``path`` and its keyword arguments, after the checks of
    :func:`load_data_file` (the UTF-8 check reads the file once, in chunks)."""
    check_data_file(path, split)
    extension = Path(path).suffix.lower()
    return _BUILDERS[extension], (("delimiter", "\t"),) if extension == ".tsv" else ()


def check_data_file(path: str, split: str) -> None:
    """A one-line error for a missing, empty, non-UTF-8 or unknown file, naming the ``--{split}_file`` flag."""
    if not Path(path).is_file():
        raise UsageError(f"--{split}_file {path} does not exist: give the path of a text, CSV, TSV or JSON file")
    if Path(path).stat().st_size == 0:
        raise UsageError(f"--{split}_file {path} is empty: give a file with at least one row of text")
    extension = Path(path).suffix.lower()
    if extension not in _BUILDERS:
        raise UsageError(f"--{split}_file {path}: use a file ending in {', '.join(_BUILDERS)}")
    check_utf8(path, f"--{split}_file")


def load_data_file(path: str, split: str, cache: Optional[str] = None) -> Dataset:
    """One local text, CSV, TSV or JSON(L) file as the dataset split ``split``; a one-line error for a missing, empty,
    non-UTF-8 or unknown file, naming the ``--{split}_file`` flag."""
    builder, kwargs = data_file_builder(path, split)
    return load_dataset(builder, data_files={split: path}, cache_dir=cache, split=split, **dict(kwargs))
