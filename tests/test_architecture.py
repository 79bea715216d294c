"""The shape of the house (docs/architecture.md): the import contracts of pyproject.toml hold (layers import only
downwards, no cycles between siblings), the package's top level stays small and no function grows past a page."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "undo"
LONGEST = 60  # lines of one function


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter")  # a dev dependency on Python >= 3.11
    linter = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([linter, "--no-cache"], cwd=SRC.parents[1], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"an import runs up the layers or closes a cycle:\n{run.stdout[-3000:]}"


def test_the_top_level_holds_the_core_only():
    assert sorted(p.name for p in SRC.glob("*.py")) == [
        "__init__.py", "cli.py", "errors.py", "experiment.py", "params.py", "settings.py",
    ]  # fmt: skip


def test_no_function_is_longer_than_a_page():
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= LONGEST
    ]
    assert not long, f"split these into named steps: {long}"
