"""The package's shape: data flows one way (data, train, advise, compress, release, study), modules stay readable."""

import ast
import fnmatch
from pathlib import Path
from typing import Optional

import hf_tbc

PACKAGE = Path(hf_tbc.__file__).resolve().parent

# The packages by concern, in the order data flows: each may import from itself and the packages before it, never
# from one after it. The root keeps the public API, errors and the CLI and process helpers.
LAYERS = [
    ("root", ["errors", "hardware", "launch", "distributed", "plots", "metrics", "metrics.*"]),
    ("budget", ["budget", "budget.*"]),
    ("cli", ["cli"]),  # runs recipes: it exits a preempted run with the budget's code
    ("data", ["data", "data.*"]),
    ("compress", ["compress", "compress.*"]),
    ("release", ["release", "release.*"]),
    ("advise", ["advise", "advise.*"]),
    ("tasks", ["tasks", "tasks.*"]),
    ("study", ["study", "study.*"]),
    ("recipes", ["recipes", "recipes.*"]),
]
# Inside a task's folder the rooms follow the same flow: what it reads, how it trains, how it compresses, what it
# releases, what a study reports of it.
ROOMS = [
    ["arguments", "data", "model", "corpus", "masking", "streaming", "bleu"],
    ["train"],
    ["recovery", "compress", "timing"],  # a variant pruned and recovered, the grid of them, grids timed together
    ["release", "card"],
    ["task", "plan", "findings", "report"],
]
ROOT_MODULES = 8  # at most: the public API, errors and the CLI and process helpers


def layer_of(module: str) -> int:
    matches = [
        index
        for index, (_, patterns) in enumerate(LAYERS)
        for pattern in patterns
        if fnmatch.fnmatchcase(module, pattern)
    ]
    assert matches, f"hf_tbc.{module} belongs to no package of LAYERS: add it there"
    return max(matches)


def room_of(module: str) -> Optional[int]:
    """The room of a module in a task's folder (``tasks.mlm.train`` is in the train room); None elsewhere."""
    parts = module.split(".")
    if len(parts) != 3 or parts[0] != "tasks":
        return None
    rooms = [index for index, names in enumerate(ROOMS) if parts[2] in names]
    assert rooms, f"hf_tbc.{module} is in no room of ROOMS: add it there"
    return rooms[0]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":  # the package's public names, taken from every layer
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        yield ".".join(parts[:-1] if is_package else parts), is_package, path


def imported(module: str, is_package: bool, path: Path) -> set[str]:
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").startswith("hf_tbc."):
                    found.add(node.module.removeprefix("hf_tbc."))
                continue
            base = here[: len(here) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] if node.module else [f"{target}.{alias.name}".strip(".") for alias in node.names]
            found.update(name for name in names if name)
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix("hf_tbc.") for alias in node.names if alias.name.startswith("hf_tbc."))
    return found


def edges() -> list[tuple[str, str]]:
    """(importing module, imported module) for every import between two of the package's modules."""
    known = {module for module, _, _ in modules()} | {"recipes"}  # recipes/ ships as hf_tbc.recipes
    found = []
    for module, is_package, path in modules():
        for target in imported(module, is_package, path):
            while target not in known and "." in target:  # ``from .. import recipes`` names a module of a package
                target = target.rsplit(".", 1)[0]
            if target in known and target != module:
                found.append((module, target))
    return found


def test_every_module_is_in_a_package_of_the_data_flow():
    for module, _, _ in modules():
        layer_of(module)
        room_of(module)


def test_no_package_imports_one_after_it_in_the_data_flow():
    upward = [
        f"hf_tbc.{module} ({LAYERS[layer_of(module)][0]}) imports hf_tbc.{target} ({LAYERS[layer_of(target)][0]})"
        for module, target in edges()
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_two_packages_import_each_other():
    pairs = {(module.split(".")[0], target.split(".")[0]) for module, target in edges()}
    both = sorted({tuple(sorted(pair)) for pair in pairs if pair[0] != pair[1] and pair[::-1] in pairs})
    assert not both, both


def test_a_tasks_rooms_import_only_the_rooms_before_them():
    backward = [
        f"hf_tbc.{module} imports hf_tbc.{target}"
        for module, target in edges()
        if room_of(module) is not None and room_of(target) is not None and room_of(target) > room_of(module)
    ]
    assert not backward, "\n".join(backward)


def test_the_root_keeps_the_public_api_errors_and_the_cli_helpers_only():
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= ROOT_MODULES, root


def test_the_layers_check_catches_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..release import plan_release\n")
    assert imported("tasks.mlm.data", False, probe) == {"tasks.release"}
    probe.write_text("from ...study import run_stages\n")
    assert layer_of(next(iter(imported("tasks.mlm.data", False, probe)))) > layer_of("tasks.mlm.data")
    probe.write_text("from .report import write_report\n")
    assert room_of(next(iter(imported("tasks.mlm.data", False, probe)))) > room_of("tasks.mlm.data")


def test_modules_and_functions_stay_readable():
    too_long = []
    for module, _, path in modules():
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append(f"hf_tbc.{module}: {len(text.splitlines())} lines (at most 400)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                too_long.append(f"hf_tbc.{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines (at most 80)")
    assert not too_long, "\n".join(too_long)


def test_every_former_module_path_still_imports_the_module_that_moved():
    import importlib

    for former, home in hf_tbc.MOVED_MODULES.items():
        assert importlib.import_module(former) is importlib.import_module(home), former
    from hf_tbc.trainer import BudgetTrainer  # as code written against the former layout imports it

    assert BudgetTrainer is importlib.import_module("hf_tbc.budget.trainer").BudgetTrainer
