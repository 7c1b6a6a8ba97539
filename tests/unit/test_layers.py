"""The tree is the import graph: each top folder is an import name, and imports only go down.

    app/        entry points (CLI, rendering, demo, DAG factory)  may import anything below
    producers/  partner side    consumers/  analyst side          import ioxhub (and themselves) only
    ioxhub/     the core                                          imports nothing above it
    dags/       Airflow's DAG files                               import the DAG factory in app only

Every import is checked, wherever it stands (a function-level import cannot dodge a layer), and the
lower layers import first-party modules at module level only.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"ioxhub", "producers", "consumers", "app"}
ALLOWED = {
    "ioxhub": {"ioxhub"},
    "producers": {"ioxhub", "producers"},
    "consumers": {"ioxhub", "consumers"},
    "app": FIRST_PARTY,
    "dags": {"app"},
}


def imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported first-party module, inside a function) of every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; name the package")
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, n, id(node) in nested) for n in names if n.split(".")[0] in FIRST_PARTY]
    return found


FILES = [p for layer in ALLOWED for p in sorted((ROOT / layer).rglob("*.py"))]


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_imports_only_go_down(path):
    layer = path.relative_to(ROOT).parts[0]
    for line, module, inside_function in imports(path):
        top = module.split(".")[0]
        assert top in ALLOWED[layer], f"{path.relative_to(ROOT)}:{line}: {layer}/ must not import {module}"
        if layer in ("ioxhub", "producers", "consumers"):
            assert not inside_function, f"{path.relative_to(ROOT)}:{line}: import {module} at module level"


def test_every_layer_has_files_and_the_checker_sees_a_violation(tmp_path):
    assert {p.relative_to(ROOT).parts[0] for p in FILES} == set(ALLOWED)
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from producers import publish_dataset\n")
    assert imports(bad) == [(2, "producers", True)]
