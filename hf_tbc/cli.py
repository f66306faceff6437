"""What every recipe shares: argument parsing (CLI flags or a YAML/JSON file) and one-line errors."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from transformers import HfArgumentParser
from transformers.utils import logging

USAGE_ERRORS = (ValueError, FileNotFoundError)


def parse_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Parses flags, or a single ``.yaml``/``.json`` file of them, into the given dataclasses."""
    parser = HfArgumentParser(dataclass_types)
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(args=argv)


def run_recipe(main: Callable[[], object]) -> None:
    """Runs a recipe's ``main``: bad input becomes one line on stderr and exit code 2, a network failure
    that outlasted its retries one line and exit code 1."""
    logging.set_verbosity_warning()
    logging.enable_default_handler()
    logging.enable_explicit_format()
    try:
        main()
    except USAGE_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except ConnectionError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
