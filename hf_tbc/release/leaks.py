"""What a Hub folder may hold: the files a user of the model needs, one public record, and nothing of this machine.

A release copies from a run or variant folder only the files that load the model (:data:`MODEL_FILES`: weights,
config, generation config, tokenizer), writes the card, and writes :data:`RECORD_FILE`, built from the local
records with every data source reduced to a Hub id or a file name. Before anything is pushed, :func:`scan` reads
every file of every repo folder (and every repo id) for the strings that would give this machine away: the
absolute paths of the output and data folders and of the home folder, those folders' names, and the host name.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

from ..errors import UsageError

RECORD_FILE = "hf_tbc_record.json"
MODEL_FILES = (
    "config.json",
    "generation_config.json",  # the model's shape, and how it decodes
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",  # weights
    "*.onnx",
    "*.onnx_data",
    "quanto_qmap.json",  # ONNX and quanto variants
    "model_int8.pt",
    "hf_tbc_quantization.json",  # int8 translation variants (QuantizedModelForSeq2SeqLM)
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",  # tokenizer
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "source.spm",
    "target.spm",
)
# learned from the data, not written by this machine: a folder's name may be a token of it, by chance
VOCABULARY_FILES = ("tokenizer.json", "vocab.json", "merges.txt")
# folder names that say nothing about whose machine this is
GENERIC_NAMES = {
    "data",
    "datasets",
    "runs",
    "run",
    "output",
    "outputs",
    "out",
    "release",
    "releases",
    "tmp",
    "temp",
    "home",
    "root",
    "work",
    "workspace",
    "models",
    "model",
    "checkpoints",
    "shared",
    "src",
    "main",
    "test",
    "tests",
    "train",
    "dev",
    "validation",
    "localhost",
    "compressed",
    "finetuned",
    "pretrained",
}
_PATH_START, _PATH_END = r"(?<![\w.-])", r"(?![\w.-])"  # a path ends where a name could not go on


def model_files(folder: Union[str, Path]) -> list[Path]:
    """The files of ``folder`` that a user of the model needs, in name order (no records, curves, checkpoints)."""
    folder = Path(folder)
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and any(fnmatch.fnmatch(path.name, pattern) for pattern in MODEL_FILES)
    )


def copy_model_files(source: Union[str, Path], destination: Union[str, Path]) -> list[str]:
    """Copies :func:`model_files` of ``source`` into ``destination`` (created); returns their names."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    names = []
    for path in model_files(source):
        shutil.copy2(path, destination / path.name)
        names.append(path.name)
    if not names:
        raise UsageError(f"{source} holds no model files (config.json, weights): pass a folder a recipe wrote")
    return names


def is_local_path(value) -> bool:
    """Whether ``value`` names a file or folder on this machine rather than a Hub id (``org/name``)."""
    text = str(value)
    return text.startswith(("/", "./", "../", "~", ".\\")) or Path(text).expanduser().exists() or "\\" in text


def public_sources(value) -> list[str]:
    """The data sources in a record's value (one, or comma-separated): Hub ids as they are, local files by file name
    only (``/home/me/client-x/train.tsv`` becomes ``train.tsv``)."""
    if value is None:
        return []
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [
        Path(part.strip()).name if is_local_path(part.strip()) else part.strip() for part in parts if str(part).strip()
    ]


@dataclass
class LocalStrings:
    """The strings of this machine a public file must not hold: ``paths`` match anywhere (also in weights), ``names``
    as whole words in text files and repo ids, except ``public`` ones (names this release gives on purpose)."""

    paths: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)  # name -> what it is, for the error message
    public: set[str] = field(default_factory=set)

    def add_folder(self, folder: Union[str, Path], what: str) -> None:
        """A folder this release read or wrote: its absolute path, its path as given, and its name."""
        resolved = Path(folder).expanduser().resolve()
        for path in (str(folder), str(resolved), str(Path(folder).expanduser().absolute())):
            self._add_path(path)
        if resolved.name:
            self.names.setdefault(resolved.name, f"the name of {what} {resolved}")

    def add_file(self, path: Union[str, Path], what: str) -> None:
        """A data file: the file as given and resolved, and the folder holding it (whose name is private; the file's
        own name may be published)."""
        given = str(path)
        resolved = Path(path).expanduser().resolve()
        for text in (given, given.rsplit("/", 1)[0], str(resolved)):
            self._add_path(text)
        self.add_folder(resolved.parent, f"the folder of {what}")

    def _add_path(self, path: str) -> None:
        """Paths with a separator only: a bare relative name (``data``) is a word, looked for as a name."""
        path = path.rstrip("/")
        if "/" in path and path not in (".", ".."):
            self.paths.add(path)

    def add_record(self, record, what: str) -> None:
        """Every path a record (a dict of a recipe's outputs, read recursively) holds."""
        if isinstance(record, dict):
            for key, value in record.items():
                self.add_record(value, f"{what}'s {key}")
        elif isinstance(record, (list, tuple)):
            for value in record:
                self.add_record(value, what)
        elif isinstance(record, str):
            for part in record.split(","):
                part = part.strip()
                if part and is_local_path(part):
                    if Path(part).expanduser().is_file() or Path(part).suffix:
                        self.add_file(part, what)
                    else:
                        self.add_folder(part, what)

    def add_machine(self) -> None:
        home = str(Path.home())
        if home not in ("/", ""):
            self.paths.add(home)
        host = socket.gethostname()
        for name in {host, host.split(".")[0]}:
            if name:
                self.names.setdefault(name, "this machine's host name")

    def _checked_names(self, in_text: bool) -> dict[str, str]:
        public = {name.lower() for name in self.public}
        return {
            name: what
            for name, what in self.names.items()
            if name.lower() not in public and name.lower() not in GENERIC_NAMES and not (in_text and len(name) < 3)
        }

    def find(self, text: str, in_text: bool = True, names: bool = True) -> Optional[tuple[str, str]]:
        """The first local string in ``text`` and what it is, or None. Names shorter than 3 characters are common
        words in running text and are looked for in repo ids only (``in_text=False``)."""
        for path in sorted(self.paths, key=len, reverse=True):
            if len(path) > 1 and re.search(_PATH_START + re.escape(path) + _PATH_END, text):
                return path, "a local path"
        if names:
            for name, what in self._checked_names(in_text).items():
                if re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text, flags=re.IGNORECASE):
                    return name, what
        return None


def _text(path: Path) -> Optional[str]:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def scan(repos: dict[str, Path], local: LocalStrings) -> None:
    """``UsageError`` naming the repo id or file and the local string it holds, if any does: every repo id, every
    text file (names as whole words; tokenizer vocabularies for paths only) and every binary file (for paths)."""
    for repo_id, folder in repos.items():
        hit = local.find(repo_id, in_text=False)
        if hit:
            raise UsageError(
                f"repo id {repo_id} holds {hit[0]!r} ({hit[1]}): name the release with --task_name, "
                "--repo_prefix or --hub_organization instead"
            )
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file():
                continue
            text = _text(path)
            if text is None:
                hit = local.find(path.read_bytes().decode("latin-1"), names=False)
            else:
                hit = local.find(text, names=path.name not in VOCABULARY_FILES)
            if hit:
                raise UsageError(
                    f"{path} would publish {hit[0]!r} ({hit[1]}): nothing was pushed; remove it from the "
                    "records or files it came from, or rename what it names"
                )


def public_names(*groups: Iterable[Optional[str]]) -> set[str]:
    """Every name this release publishes on purpose (sizes, variants, tasks, datasets and their parts, languages):
    a local folder may share one (``data/sst2``) without anything being given away."""
    names = set()
    for group in groups:
        for value in group:
            if value:
                names.add(str(value))
                names.update(part for part in re.split(r"[/\s,()]+", str(value)) if part)
    return names


def dataset_line(dataset_id: str, dataset_config: Optional[str]) -> str:
    """How a card names its data: the Hub id, and its config in parentheses (``nyu-mll/glue (sst2)``)."""
    return f"{dataset_id} ({dataset_config})" if dataset_config else dataset_id
