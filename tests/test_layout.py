"""The package's shape: data flows one way (data, train, advise, compress, release, study), modules stay readable."""

import ast
import fnmatch
from pathlib import Path

import hf_tbc

PACKAGE = Path(hf_tbc.__file__).resolve().parent

# Each layer may import from itself and the layers before it, never from one after it.
LAYERS = [
    (
        "shared",
        [
            "errors",
            "hardware",
            "budget",
            "budget.*",
            "datafiles",
            "tokenizer",
            "runs",
            "arguments",
            "trainer",
            "model_config",
            "curves",
            "plots",
            "records",
            "cli",
            "launch",
            "ranks",
            "metrics",
            "metrics.*",
        ],
    ),
    (
        "data",
        [
            "tasks",
            "tasks.*",
            "tasks.*.arguments",
            "tasks.*.data",
            "tasks.*.model",
            "tasks.mlm.corpus",
            "tasks.mlm.masking",
            "tasks.mlm.streaming",
            "tasks.translation.bleu",
        ],
    ),
    ("train", ["tasks.*.train"]),
    ("advise", ["advise", "advise.*"]),
    (
        "compress",
        [
            "compress",
            "compress.*",
            "evaluation",
            "variants",
            "onnx_model",
            "onnx_seq2seq",
            "onnx_decoding",
            "tasks.*.compress",
        ],
    ),
    ("release", ["selection", "public", "hub", "release", "tasks.*.card", "tasks.*.release"]),
    (
        "study",
        ["tasks.*.plan", "tasks.*.questions", "tasks.*.report", "tasks.registry", "study", "recipes", "recipes.*"],
    ),
]


def layer_of(module: str) -> int:
    matches = [
        index
        for index, (_, patterns) in enumerate(LAYERS)
        for pattern in patterns
        if fnmatch.fnmatchcase(module, pattern)
    ]
    assert matches, f"hf_tbc.{module} belongs to no layer: add it to LAYERS"
    return max(matches)  # the most specific pattern is the latest layer that names it


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


def test_no_module_imports_one_above_it_in_the_data_flow():
    known = {module for module, _, _ in modules()}
    upward = []
    for module, is_package, path in modules():
        for target in imported(module, is_package, path):
            while target not in known and "." in target:  # ``from .. import recipes`` names a module of a package
                target = target.rsplit(".", 1)[0]
            if target in known and layer_of(target) > layer_of(module):
                upward.append(
                    f"hf_tbc.{module} ({LAYERS[layer_of(module)][0]}) imports hf_tbc.{target} "
                    f"({LAYERS[layer_of(target)][0]})"
                )
    assert not upward, "\n".join(upward)


def test_the_layers_check_catches_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from ..release import plan_release\n")
    assert imported("tasks.mlm.data", False, probe) == {"tasks.release"}
    probe.write_text("from ...release import plan_release\n")
    assert layer_of(next(iter(imported("tasks.mlm.data", False, probe)))) > layer_of("tasks.mlm.data")


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
