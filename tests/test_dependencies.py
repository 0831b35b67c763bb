"""Every third-party module the package imports, at the top of a file or inside a function, is a
declared dependency of the installed facecascade; every one the tests import is a dependency, in
the ``test`` extra, or installed apart as the README says. Read from the code (``ast``) and from
the installed metadata, so a dependency dropped from pyproject.toml fails here even where no test
happens to run the import. A runtime extra's packages (``wider``: scipy; ``ray``: ray, pyarrow;
``onnx``: onnx, onnxscript, onnxruntime; ``openvino``) are imported only inside functions, so that
``import facecascade`` and everything else work without them."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Installed apart by the README's second command (its pins would downgrade torch and numpy).
APART = {"facenet_pytorch": "facenet-pytorch"}
SCRIPTS = {path.stem for path in (ROOT / "benchmarks").glob("*.py")}  # the repository's own benchmarks
# Optional runtime features: `pip install "facecascade[<extra>]"`, imported lazily.
RUNTIME_EXTRAS = ("wider", "ray", "onnx", "openvino")


def _module_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return {node.module.split(".")[0]}
    return set()


def imported_modules(folder: Path) -> set[str]:
    """Top-level names of the absolute imports in the Python files under ``folder``."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names |= _module_names(node)
    return _third_party(names)


def _third_party(names: set[str]) -> set[str]:
    return names - set(sys.stdlib_module_names) - {"__future__", "facecascade", "tests"}


def eagerly_imported_modules(folder: Path) -> set[str]:
    """Top-level names of the absolute imports outside any function (run when a module is imported)."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
        while stack:
            node = stack.pop()
            names |= _module_names(node)
            stack += [
                n for n in ast.iter_child_nodes(node) if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            ]
    return _third_party(names)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None = None) -> set[str]:
    """Distributions the installed facecascade requires (with ``extra``: those of that extra only)."""
    out = set()
    for requirement in metadata.requires("facecascade") or []:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        marker = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if name and (marker.group(1) if marker else None) == extra:
            out.add(_canonical(name.group(0)))
    return out


def undeclared(modules: set[str], allowed: set[str]) -> dict[str, list[str]]:
    """Modules none of whose distributions is in ``allowed`` (module -> its distributions)."""
    owners = metadata.packages_distributions()
    missing = {}
    for module in sorted(modules):
        dists = [_canonical(d) for d in owners.get(module, [])]
        if not set(dists) & allowed:
            missing[module] = dists
    return missing


def _runtime_extras() -> set[str]:
    return set().union(*(declared(extra) for extra in RUNTIME_EXTRAS))


def test_the_package_imports_only_declared_dependencies():
    modules = imported_modules(ROOT / "facecascade")
    assert {"torch", "numpy", "PIL", "pycocotools", "av", "scipy"} <= modules  # the walk sees lazy imports too
    assert undeclared(modules, declared() | _runtime_extras()) == {}
    assert "scipy" in declared("wider") and "scipy" in declared("test")
    assert {"ray", "pyarrow"} <= declared("ray") and {"ray", "pyarrow"} <= declared("test")
    assert {"onnx", "onnxscript", "onnxruntime"} <= declared("onnx") & declared("test")
    assert "openvino" in declared("openvino") & declared("test")


def test_runtime_extras_are_imported_lazily():
    eager = eagerly_imported_modules(ROOT / "facecascade")
    assert {"torch", "numpy"} <= eager and "scipy" not in eager  # scipy: only inside the .mat readers
    assert not {"ray", "pyarrow"} & eager  # Ray and its Parquet writer: only when a job or --parquet asks
    assert not {"onnx", "onnxscript", "onnxruntime", "openvino"} & eager  # only to export or run an export
    assert undeclared(eager, declared()) == {}


def test_the_tests_import_only_declared_or_documented_packages():
    modules = imported_modules(ROOT / "tests") - set(APART) - SCRIPTS
    assert "pytest" in modules
    assert undeclared(modules, declared() | declared("test")) == {}
    assert "requests" in declared("test")  # facenet-pytorch imports it; --no-deps leaves it out


def test_the_checker_catches_a_missing_declaration():
    assert undeclared({"pycocotools", "numpy"}, declared() - {"pycocotools"}) == {"pycocotools": ["pycocotools"]}
    assert undeclared({"no_such_module_xyz"}, declared()) == {"no_such_module_xyz": []}
