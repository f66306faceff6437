"""The built-in pretraining corpus: English prose from the installed Python's docstrings and help topics, so
pretraining works on any machine with no network."""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from pathlib import Path
from typing import Iterator, Optional

from transformers.utils import logging

from ...data.files import cache_dir, write_atomically

logger = logging.get_logger(__name__)

DEFAULT_CORPUS_NAME = f"python{sys.version_info.major}.{sys.version_info.minor}-stdlib-docs"


def _prose_paragraphs(text: str) -> Iterator[str]:
    """Paragraphs of running English in a docstring or help topic, each joined into one line."""
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.strip().splitlines()]
        if not lines or any(line.startswith((">>>", "...", "$ ", "%")) for line in lines):
            continue
        line = " ".join(lines)
        letters = sum(ch.isalpha() or ch == " " for ch in line)
        if len(line) >= 80 and letters / len(line) > 0.85 and line.count(" ") >= 10:
            yield line


def _stdlib_texts(stdlib: Path) -> Iterator[str]:
    for path in sorted(stdlib.rglob("*.py")):
        parts = path.relative_to(stdlib).parts
        if any(part in ("test", "tests", "idle_test", "site-packages", "dist-packages") for part in parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node)
                if docstring:
                    yield docstring
    try:  # the language reference's help topics, shipped with CPython as plain strings
        from pydoc_data.topics import topics

        yield from (topics[name] for name in sorted(topics))
    except ImportError:
        pass


def default_corpus(path: Optional[Path] = None) -> Path:
    """The built-in corpus: English prose from the installed Python's docstrings and help topics.

    Every Python installation has it, so pretraining works with no network. Built on first use
    (a few seconds) and cached as one paragraph per line.
    """
    path = path or cache_dir() / "corpus" / f"{DEFAULT_CORPUS_NAME}.txt"
    if not path.exists():
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        seen: set[str] = set()
        paragraphs = []
        for text in _stdlib_texts(stdlib):
            for paragraph in _prose_paragraphs(text):
                if paragraph not in seen:
                    seen.add(paragraph)
                    paragraphs.append(paragraph)
        if not paragraphs:
            raise RuntimeError(f"found no docstrings under {stdlib}: pass --train_file or --dataset_name instead")
        write_atomically(path, "\n".join(paragraphs) + "\n")
        logger.info(f"Built the default corpus: {len(paragraphs):,} paragraphs in {path}")
    return path
