"""The package's layers: imports point down only, no circles, every module in the README's map,
moved names still reachable, and notebooks that only read."""

from __future__ import annotations

import importlib
import re

import nbformat
import pytest

import lshlib
from lshlib.paths import REPO_ROOT
from lshlib.report import modules
from lshlib.report import readme as readme_report


def test_every_module_belongs_to_a_layer():
    for m in modules.modules():
        modules.layer_of(m)  # raises for a module no layer names
    with pytest.raises(LookupError, match="lshlib.newthing belongs to no layer"):
        modules.layer_of("newthing")


def test_imports_point_down_only():
    assert modules.upward_imports() == []


def test_the_layer_check_sees_an_upward_import_inside_a_function(tmp_path, monkeypatch):
    package = tmp_path / "lshlib"
    (package / "lsh").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lsh" / "__init__.py").write_text("")
    (package / "lsh" / "hashing.py").write_text("def f():\n    from lshlib import modeling\n")
    (package / "modeling.py").write_text("from lshlib.lsh import hashing\n")
    monkeypatch.setattr(modules, "PACKAGE", package)
    assert modules.upward_imports() == ["lshlib.lsh.hashing -> lshlib.modeling"]
    assert modules.circles() == [["lsh.hashing", "modeling", "lsh.hashing"]]


def test_no_import_circle():
    assert modules.circles() == []


def test_the_readme_module_map_lists_every_module_by_layer():
    text = (REPO_ROOT / "README.md").read_text()
    assert readme_report.modules_section() in text, "stale module map: run make readme"
    listed = re.findall(r"^\| [a-z]+ \| `(lshlib/[^`]+)` \|", text, flags=re.M)
    files = sorted(
        p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "lshlib").rglob("*.py")
    )
    assert sorted(listed) == files


@pytest.mark.parametrize("old", sorted(lshlib.MOVED))
def test_a_moved_module_is_still_reachable_from_lshlib(old):
    assert getattr(lshlib, old) is importlib.import_module(f"lshlib.{lshlib.MOVED[old]}")


@pytest.mark.parametrize("package", ["training", "verdict", "bench"])
def test_every_name_a_layer_offers_resolves(package):
    facade = importlib.import_module(f"lshlib.{package}")
    for name, sub in facade._NAMES.items():
        assert getattr(facade, name) is getattr(
            importlib.import_module(f"lshlib.{package}.{sub}"), name
        )
    with pytest.raises(AttributeError, match=f"'lshlib.{package}' has no attribute 'nope'"):
        facade.nope  # noqa: B018


WRITERS = re.compile(
    r"save=True|save_claims|atomic_write|write_text|write_bytes|to_json\(|to_csv\(|open\([^)]*['\"]w"
)


def test_no_notebook_writes_results():
    """Notebooks read records and derived files; python -m lshlib.verdict writes them."""
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert not WRITERS.search(cell.source), f"{path.name} writes: {cell.source[:80]}"
