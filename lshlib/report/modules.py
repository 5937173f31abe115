"""The package's layers and its module map: which layer each module of ``lshlib`` belongs to,
what it imports, and the README's table of every module by layer.

The layers, lowest first, are :data:`LAYERS`; a module may import from its own layer and the
layers below it, never above (``tests/test_layout.py`` checks every import, those inside
functions included, and that no layer's modules import each other in a circle). The first line
of each module's docstring is its entry in the map.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from lshlib.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "lshlib"
# (layer, what it holds, the modules in it: dotted names below lshlib, or a package prefix "x.")
LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "foundation",
        "settings, paths, safe files, the paper's numbers, names",
        ("", "scales", "paths", "safeio", "paper", "variants"),
    ),
    ("lsh", "the LSH core: hashing, theory, attention, kernels, oracles, costs", ("lsh.",)),
    ("models", "datasets and the BERT / BERT-LSH models", ("data", "data.", "modeling")),
    ("bench", "measuring time and memory; the benchmark grids", ("bench.",)),
    ("training", "run configurations, Trainer runs and their records", ("training.",)),
    (
        "experiments",
        "experiments on attention; the pre-registered plateau study",
        ("experiments.",),
    ),
    ("verdict", "the verdict's plan, comparisons and claims", ("verdict.",)),
    ("report", "figures and generated sentences (reads records, writes figures)", ("report.",)),
    ("widgets", "the notebooks' interactive explorers", ("widgets.",)),
)


def modules() -> list[str]:
    """Every module of the package, dotted below ``lshlib`` ("" is ``lshlib`` itself)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


def layer_of(module: str) -> int:
    """The rank of ``module``'s layer in :data:`LAYERS` (0 is the lowest)."""
    for rank, (_, _, members) in enumerate(LAYERS):
        for m in members:
            if module == m or (m.endswith(".") and (module + ".").startswith(m)):
                return rank
    raise LookupError(f"module lshlib.{module} belongs to no layer of lshlib.report.modules")


def _file(module: str) -> Path:
    base = PACKAGE.joinpath(*module.split(".")) if module else PACKAGE
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imports(module: str) -> set[str]:
    """The ``lshlib`` modules that ``module`` imports anywhere in its file (dotted below
    ``lshlib``): ``from lshlib.x import y`` counts as ``x.y`` when that is a module, else ``x``."""
    known = set(modules())
    out: set[str] = set()
    for node in ast.walk(ast.parse(_file(module).read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            names = [n for n in names[:-1] if n.removeprefix("lshlib.") in known] or names[-1:]
        else:
            continue
        for name in names:
            if name == "lshlib" or name.startswith("lshlib."):
                out.add(name.removeprefix("lshlib").removeprefix("."))
    return out - {module}


def upward_imports() -> list[str]:
    """Every import that points to a higher layer, as ``"a -> b"``."""
    return [
        f"lshlib.{m} -> lshlib.{d}"
        for m in modules()
        for d in sorted(imports(m))
        if layer_of(d) > layer_of(m)
    ]


def circles() -> list[list[str]]:
    """Import circles among the modules (depth-first search over :func:`imports`)."""
    graph = {m: imports(m) for m in modules()}
    found, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                found.append([*stack[stack.index(d) :], d] if d in stack else [m, d])
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    return found


def summary(module: str) -> str:
    """The first sentence of the module's docstring."""
    doc = ast.get_docstring(ast.parse(_file(module).read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split()).split(". ")[0].rstrip(".")
    first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first).replace("``", "`")
    return first.replace("|", "\\|")


def module_map() -> str:
    """The README's module map: one table, every module by layer, lowest layer first."""
    lines = ["| layer | module | what it holds |", "|---|---|---|"]
    for rank, (name, _, _) in enumerate(LAYERS):
        for m in (m for m in modules() if layer_of(m) == rank):
            path = _file(m).relative_to(REPO_ROOT).as_posix()
            lines.append(f"| {name} | `{path}` | {summary(m)} |")
    return "\n".join(lines)
