"""The layout rules of the package (issue 22, ../shared/DESIGN.md), read from the source with ``ast``.

Nothing here imports the modules it checks, so the rules are checked in about a second and a
module that does not import (TensorFlow missing, say) is still read. Each failure names the file,
the line and the function or import at fault.
"""
from __future__ import annotations

import ast
import builtins
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package lives in the checkout (setup.py's package_dir).
PACKAGE_DIRS = {"lm_zoo": ROOT / "lm_zoo", "lm_zoo.pretrained": ROOT / "pretrained", "lm_zoo.datasets": ROOT / "datasets"}
MAX_FUNCTION_LINES = 150
PRIVATE_TFDS_NAMES = {"_get_pkg_dir_path", "_download_and_prepare", "_data_dir_root", "_download_dir"}
# Who may import lm_zoo.phantoms: the phantoms themselves, the CLI and its commands, the dataset
# glue (today's patch_datasets.py, or the package that replaces it) and the TFDS builders.
PHANTOM_IMPORTERS = ("lm_zoo.phantoms", "lm_zoo.commands", "lm_zoo.cli", "lm_zoo.patch_datasets",
                     "lm_zoo.dataset_builder", "lm_zoo.datasets")


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the installed package."""
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if any(not re.fullmatch(r"\w+", p) for p in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


@lru_cache(maxsize=None)
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(node: ast.AST, module_level_only: bool):
    """Import statements run when the module is imported (``module_level_only``: not inside a
    function, not under ``if TYPE_CHECKING``), or all of them."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif module_level_only and (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                                    or _is_type_checking(child)):
            continue
        else:
            yield from _import_nodes(child, module_level_only)


def imported_modules(name: str, module_level_only: bool) -> list[tuple[str, int]]:
    """``(module of the package, line)`` for each import in module ``name``."""
    known = modules()
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _import_nodes(tree(path), module_level_only):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import submodule` imports the submodule; `from module import name` the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:  # `import lm_zoo.x.y` of a non-module name
                target = target.rpartition(".")[0]
            if target:
                found.append((target, node.lineno))
    return list(dict.fromkeys(found))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_no_import_cycle_at_module_level():
    """Imports point down only. An import inside a function (run on first use) is the sanctioned
    way to reach upwards, so only the imports that run at import time count."""
    edges = {name: imported_modules(name, module_level_only=True) for name in modules()}
    graph = {name: {target for target, _ in found if target != name} for name, found in edges.items()}
    problems = []
    for component in _cycles(graph):
        inside = [f"{rel(modules()[a])}:{line} imports {b}" for a in component
                  for b, line in edges[a] if b in component and b != a]
        problems.append(f"import cycle among {', '.join(component)}:\n    " + "\n    ".join(inside))
    assert not problems, "\n".join(problems)


def test_only_phantoms_dataset_glue_and_cli_import_the_phantoms():
    problems = [
        f"{rel(path)}:{line} imports {target}"
        for name, path in modules().items()
        if not any(name == allowed or name.startswith(allowed + ".") for allowed in PHANTOM_IMPORTERS)
        for target, line in imported_modules(name, module_level_only=False)
        if target == "lm_zoo.phantoms" or target.startswith("lm_zoo.phantoms.")
    ]
    assert not problems, "only phantoms/, the dataset glue and the CLI may import lm_zoo.phantoms:\n" + "\n".join(problems)


def test_no_function_over_150_lines():
    problems = []
    for path in sorted((ROOT / "lm_zoo").rglob("*.py")):
        for node in ast.walk(tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    problems.append(f"{rel(path)}:{node.lineno} {node.name}() has {lines} lines")
    assert not problems, f"functions over {MAX_FUNCTION_LINES} lines (split them):\n" + "\n".join(problems)


def _private_tfds_uses(path: Path):
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = node.name
        elif isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value  # getattr(builder, "_download_dir")
        else:
            continue
        if name in PRIVATE_TFDS_NAMES:
            yield node.lineno, name


def test_no_private_tfds_attributes():
    """TFDS may rename its private attributes in any release; the glue uses the public builder API."""
    problems = [f"{rel(path)}:{line} uses {name}"
                for folder in ("lm_zoo", "datasets") for path in sorted((ROOT / folder).rglob("*.py"))
                for line, name in _private_tfds_uses(path)]
    assert not problems, "private TFDS attributes:\n" + "\n".join(problems)


_BENCHMARK_PATH = re.compile(r"^(\.{0,2}/)?benchmarks(/[\w./-]*)?$")


def _benchmark_loads(path: Path):
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A path to a benchmark file (`ROOT / "benchmarks" / "x.py"`, "benchmarks/x.py") or a
            # dotted name for importlib.import_module; prose that mentions a script does not match.
            if _BENCHMARK_PATH.match(node.value) or node.value.startswith("benchmarks."):
                yield node.lineno, repr(node.value)
            continue
        else:
            continue
        for name in names:
            if name == "benchmarks" or name.startswith("benchmarks."):
                yield node.lineno, f"import {name}"


def test_tests_import_the_package_only_never_benchmark_files():
    problems = [f"{rel(path)}:{line} loads a benchmark file ({what})"
                for path in sorted((ROOT / "tests").rglob("*.py")) if path != Path(__file__).resolve()
                for line, what in sorted(_benchmark_loads(path))]
    assert not problems, "tests must test the package, not benchmarks/ scripts:\n" + "\n".join(problems)


def _builtin_exception(name: str) -> bool:
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, BaseException) and value not in (Exception, BaseException)


def _classes():
    """(module, class node) for every class of the package."""
    for name, path in modules().items():
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ClassDef):
                yield name, path, node


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def test_every_error_class_is_an_lm_zoo_error_and_a_builtin():
    """``except LmZooError`` catches every error of the package (the CLI turns them into one line),
    and ``except ValueError`` (or the builtin that fits) keeps working."""
    classes = list(_classes())
    bases = {}
    for _, _, node in classes:
        bases.setdefault(node.name, set()).update(_base_names(node))

    @lru_cache(maxsize=None)
    def ancestry(name: str) -> frozenset:
        found = set()
        for base in bases.get(name, ()):
            found |= {base} | (ancestry(base) if base != name else set())
        return frozenset(found)

    problems = []
    for _, path, node in classes:
        if not node.name.endswith("Error") or node.name == "LmZooError":
            continue
        ancestors = ancestry(node.name)
        if "LmZooError" not in ancestors:
            problems.append(f"{rel(path)}:{node.lineno} {node.name}({', '.join(_base_names(node))}) does not subclass LmZooError")
        if not any(_builtin_exception(a) for a in ancestors):
            problems.append(f"{rel(path)}:{node.lineno} {node.name} has no builtin base (ValueError, RuntimeError, ...)")
    assert not problems, "error classes outside the hierarchy of lm_zoo.errors:\n" + "\n".join(problems)


def test_the_rules_see_the_package():
    """Guards against a rule passing because it reads nothing."""
    names = modules()
    assert {"lm_zoo.io", "lm_zoo.cli", "lm_zoo.errors", "lm_zoo.pretrained"} <= set(names)
    cli_imports = {target for target, _ in imported_modules("lm_zoo.cli", module_level_only=True)}
    assert "lm_zoo.errors" in cli_imports
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _BENCHMARK_PATH.match("benchmarks") and not _BENCHMARK_PATH.match("python benchmarks/detect.py")


_UPPER = ("lm_zoo.detection", "lm_zoo.training", "lm_zoo.evaluation", "lm_zoo.commands", "lm_zoo.cli")
_DATA = ("lm_zoo.dataset_builder", "lm_zoo.patch_datasets", "lm_zoo.phantoms", "lm_zoo.cohorts")
# What each part must never import, even inside a function (../shared/DESIGN.md, "may import"):
# data flows one way, and the three traps of the map are named (pretrained knows no detection,
# detection knows no dataset glue, the vocabulary knows nothing).
LAYERS = {
    "lm_zoo.anatomy": ("lm_zoo",),
    "lm_zoo.errors": ("lm_zoo",),
    "lm_zoo.pretrained": ("lm_zoo.applications", "lm_zoo.features", "lm_zoo.io", "lm_zoo.segmentation", *_UPPER, *_DATA),
    "lm_zoo.io": ("lm_zoo.landmarks", "lm_zoo.segmentation", "lm_zoo.patches", "lm_zoo.applications", *_UPPER, *_DATA),
    "lm_zoo.landmarks": ("lm_zoo.applications", *_UPPER, *_DATA),
    "lm_zoo.segmentation": ("lm_zoo.patches", "lm_zoo.applications", *_UPPER, *_DATA),
    "lm_zoo.patches": ("lm_zoo.segmentation", "lm_zoo.applications", *_UPPER, *_DATA),
    "lm_zoo.intensity": ("lm_zoo.segmentation", "lm_zoo.applications", *_UPPER, *_DATA),
    "lm_zoo.augment": ("lm_zoo.segmentation", "lm_zoo.applications", *_UPPER, *_DATA),
    "lm_zoo.applications": ("lm_zoo.features", "lm_zoo.segmentation", *_UPPER, *_DATA),
    "lm_zoo.features": ("lm_zoo.segmentation", *_UPPER, *_DATA),
    "lm_zoo.detection": ("lm_zoo.training", "lm_zoo.evaluation", "lm_zoo.commands", "lm_zoo.cli", *_DATA),
    "lm_zoo.training": ("lm_zoo.detection", "lm_zoo.phantoms", "lm_zoo.commands", "lm_zoo.cli"),
    "lm_zoo.evaluation": ("lm_zoo.detection", "lm_zoo.training", "lm_zoo.phantoms", "lm_zoo.commands", "lm_zoo.cli"),
    "lm_zoo.cohorts": ("lm_zoo.applications", "lm_zoo.dataset_builder", "lm_zoo.phantoms", *_UPPER),
    "lm_zoo.phantoms": ("lm_zoo.applications", "lm_zoo.features", "lm_zoo.dataset_builder", *_UPPER),
    "lm_zoo.dataset_builder": ("lm_zoo.applications", "lm_zoo.features", *_UPPER),
}


def _under(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


def test_each_part_imports_only_the_parts_below_it():
    problems = [
        f"{rel(path)}:{line} {name} imports {target} (a part above it, or beside it in another branch of the flow)"
        for name, path in modules().items()
        for part, banned in LAYERS.items() if _under(name, part)
        for target, line in imported_modules(name, module_level_only=False)
        if not _under(target, part) and any(_under(target, b) for b in banned)
    ]
    assert not problems, "\n".join(problems)


def test_the_layer_rules_catch_an_upward_import(tmp_path, monkeypatch):
    """The rule above reads real imports: a vocabulary that imported a phantom would be caught."""
    fake = tmp_path / "anatomy.py"
    fake.write_text("def f():\n    from lm_zoo.phantoms import torso_ct\n", encoding="utf-8")
    monkeypatch.setitem(modules(), "lm_zoo.anatomy", fake)
    assert ("lm_zoo.phantoms.torso_ct", 2) in imported_modules("lm_zoo.anatomy", module_level_only=False)
