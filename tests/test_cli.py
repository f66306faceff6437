"""How a recipe ends: one line and exit 2 for bad input only, 143 for preemption, tracebacks for bugs."""

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from hf_tbc.budget.runs import check_writable
from hf_tbc.cli import parse_args, peek_flag
from hf_tbc.data.files import check_utf8
from hf_tbc.errors import UsageError


@dataclass
class Flags:
    time_budget: str = field(default="1m")
    steps: int = field(default=1)


def test_flags_come_from_yaml_and_json_files(tmp_path):
    (tmp_path / "run.yaml").write_text("time_budget: 15m\nsteps: 3\n")
    (tmp_path / "run.json").write_text('{"time_budget": "2h"}')
    assert parse_args((Flags,), [str(tmp_path / "run.yaml")]) == (Flags("15m", 3),)
    assert parse_args((Flags,), [str(tmp_path / "run.json")]) == (Flags("2h", 1),)


@dataclass
class Required:
    output_dir: str = field(metadata={"help": "required"})
    learning_rate: float = field(default=5e-5)


def test_flags_after_a_flags_file_override_it_and_its_values_parse_as_flags(tmp_path):
    (tmp_path / "run.yaml").write_text("time_budget: 15m\nsteps: 3\n")
    assert parse_args((Flags,), [str(tmp_path / "run.yaml"), "--steps", "5"]) == (Flags("15m", 5),)
    assert peek_flag("steps", [str(tmp_path / "run.yaml"), "--steps=7"]) == "7"
    (tmp_path / "required.yaml").write_text("output_dir: out\nlearning_rate: 1e-3\n")  # YAML reads 1e-3 as text
    assert parse_args((Required,), [str(tmp_path / "required.yaml")]) == (Required("out", 1e-3),)
    assert parse_args((Required,), [str(tmp_path / "required.yaml"), "--output_dir", "b"]) == (Required("b", 1e-3),)


def test_a_flag_is_read_before_parsing_from_flags_or_a_file(tmp_path):
    (tmp_path / "run.yaml").write_text("model_name_or_path: runs/E3\nsteps: 3\n")
    assert peek_flag("model_name_or_path", ["--steps", "2", "--model_name_or_path", "runs/a"]) == "runs/a"
    assert peek_flag("model_name_or_path", ["--model_name_or_path=runs/b"]) == "runs/b"
    assert peek_flag("model_name_or_path", [str(tmp_path / "run.yaml")]) == "runs/E3"
    assert peek_flag("model_name_or_path", ["--steps", "2"]) is None
    assert peek_flag("model_name_or_path", ["--model_name_or_path"]) is None  # no value: the parser names it


@pytest.mark.parametrize(
    "text, message",
    [
        ("time_budget: [15m\n", "does not parse"),
        ("- 15m\n", "must hold a mapping"),
        ("time_budget: 15m\nbudget: 2\n", "Some keys are not used.*--help"),
    ],
)
def test_bad_flag_files_are_usage_errors(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UsageError, match=message):
        parse_args((Flags,), [str(tmp_path / "bad.yaml")])
    with pytest.raises(UsageError, match="does not exist"):
        parse_args((Flags,), [str(tmp_path / "missing.yaml")])


def _end(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "recipe.py"
    script.write_text(
        "from hf_tbc.cli import run_recipe\nfrom hf_tbc.errors import UsageError\n" + body + "\nrun_recipe(main)\n"
    )
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)


def test_only_usage_errors_become_one_line_exit_2(tmp_path):
    bad_input = _end(tmp_path, "def main():\n    raise UsageError('--time_budget soon is not a duration: use 15m')")
    assert (
        bad_input.returncode == 2 and bad_input.stderr.strip() == "error: --time_budget soon is not a duration: use 15m"
    )
    bug = _end(tmp_path, "def main():\n    return int('not a number')")  # a ValueError from a bug keeps its traceback
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "invalid literal for int()" in bug.stderr


def test_a_preempted_run_exits_143_with_its_checkpoint(tmp_path):
    done = _end(
        tmp_path,
        "def main():\n    return {'stop_reason': 'preempted', 'checkpoint': 'runs/x/checkpoint-4', "
        "'resume': 'rerun with --resume_from_checkpoint true'}",
    )
    assert done.returncode == 143
    assert (
        done.stderr.strip().splitlines()[-1]
        == "preempted: checkpoint runs/x/checkpoint-4; rerun with --resume_from_checkpoint true"
    )
    finished = _end(tmp_path, "def main():\n    return {'stop_reason': 'time_budget'}")
    assert finished.returncode == 0


def test_non_utf8_text_is_named_with_its_byte(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"--train_file .*latin1.txt is not UTF-8 text \(byte 0xe9 at offset 3\)"):
        check_utf8(str(tmp_path / "latin1.txt"), "--train_file")
    (tmp_path / "fine.txt").write_text("caf\u00e9\n", encoding="utf-8")
    check_utf8(str(tmp_path / "fine.txt"), "--train_file")


def test_unwritable_output_dir_is_named_and_nothing_is_created(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_writable(tmp_path / "a_file" / "run")
    with pytest.raises(UsageError, match="cannot be written"):
        check_writable("/proc/hf-tbc-forbidden/run")  # no one may make folders in /proc, root included
    check_writable(tmp_path / "new" / "run")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"]
