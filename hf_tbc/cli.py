"""What every recipe shares: argument parsing (CLI flags or a YAML/JSON file) and how a run ends.

Exit codes: 0 done; 2 bad input (one ``error:`` line naming the fix, nothing written); 143 preempted (a
checkpoint to resume from, as a process ended by SIGTERM reports); 1 a network failure that outlasted its
retries (one line) or a bug (with its traceback).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import yaml
from transformers import HfArgumentParser
from transformers.utils import logging

from .budget import PREEMPTED_EXIT_CODE
from .errors import UsageError
from .launch import stop_with_parent, use_every_core


def recipes_folder() -> Path:
    """The folder of the recipe scripts, found without importing them: ``recipes/`` of a checkout (an editable
    install maps it to ``hf_tbc.recipes``), ``hf_tbc/recipes`` of an installed wheel."""
    spec = importlib.util.find_spec("hf_tbc.recipes")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


FLAG_FILES = (".yaml", ".yml", ".json")


def parse_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Parses flags into the given dataclasses. A first argument naming a ``.yaml``/``.json`` file of flags
    (``time_budget: 15m``, one per line) sets them; the flags after it override it (``run.yaml --time_budget 1h``)."""
    parser = HfArgumentParser(dataclass_types)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(FLAG_FILES) and not argv[0].startswith("-"):
        _use_as_defaults(parser, argv[0], _read_flags_file(argv[0]))
        argv = argv[1:]
    return parser.parse_args_into_dataclasses(args=argv)


def peek_flag(name: str, argv: Sequence[str] | None = None) -> str | None:
    """The value of ``--name`` among the flags (``--name value``, ``--name=value``, else a key of the YAML/JSON file
    of flags they start with), before they are parsed: for recipes whose other flags depend on it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for index, flag in enumerate(argv):
        if flag == f"--{name}" and index + 1 < len(argv):
            return argv[index + 1]
        if flag.startswith(f"--{name}="):
            return flag.split("=", 1)[1]
    if argv and argv[0].endswith(FLAG_FILES) and Path(argv[0]).is_file():
        try:
            values = yaml.safe_load(Path(argv[0]).read_text())  # JSON is YAML too
        except yaml.YAMLError:
            return None  # parse_args names the syntax error
        return str(values[name]) if isinstance(values, dict) and name in values else None
    return None


def _read_flags_file(path: str) -> dict:
    if not Path(path).is_file():
        raise UsageError(f"{path} does not exist: pass a YAML or JSON file of flags, or the flags themselves")
    try:
        values = (
            json.loads(Path(path).read_text()) if path.endswith(".json") else yaml.safe_load(Path(path).read_text())
        )
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(error, "lineno", None)
        raise UsageError(
            f"{path} does not parse ({type(error).__name__}{f' near line {line}' if line else ''}): fix "
            "its syntax, one `flag_name: value` per line"
        ) from None
    if not isinstance(values, dict):
        raise UsageError(f"{path} must hold a mapping of flag names to values, e.g. `time_budget: 15m`")
    return values


def _use_as_defaults(parser: HfArgumentParser, path: str, values: dict) -> None:
    """The file's values become the parser's defaults (a flag it sets is no longer required); a string value is
    parsed as its flag's would be, so ``learning_rate: 1e-3`` is a float."""
    flags = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(flags))
    if unknown:
        raise UsageError(
            f"{path}: Some keys are not used by the HfArgumentParser: {unknown}; see --help for the flag names"
        )
    for name in values:
        flags[name].required = False
    parser.set_defaults(**values)


def run_recipe(main: Callable[[], object]) -> None:
    """Runs a recipe's ``main`` and turns its end into an exit code (see the module docstring)."""
    stop_with_parent()
    logging.set_verbosity_warning()
    logging.enable_default_handler()
    logging.enable_explicit_format()
    threads = use_every_core()
    if threads is not None:
        logging.get_logger(__name__).warning(
            f"one process on the CPU: torch uses all {threads} cores (accelerate launch had set OMP_NUM_THREADS=1; "
            "`taskset -c` narrows the cores a run may use)"
        )
    try:
        outcome = main()
    except UsageError as error:
        _say(f"error: {error}")
        sys.exit(2)
    except ConnectionError as error:
        _say(f"error: {error}")
        sys.exit(1)
    if isinstance(outcome, dict) and outcome.get("stop_reason") == "preempted":
        _say(f"preempted: checkpoint {outcome.get('checkpoint')}; {outcome.get('resume')}")
        sys.exit(PREEMPTED_EXIT_CODE)


def _say(line: str) -> None:
    """One line on stderr in one write: the ranks of a run share stderr, and their lines must not interleave."""
    sys.stderr.flush()
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stderr without a file behind it (captured, redirected in-process)
        sys.stderr.write(line + "\n")
        return
    os.write(descriptor, (line + "\n").encode())
