"""pyproject.toml and environment.yml declare the same dependencies.

environment.yml pins torch exactly (``torch==2.13.0``, the build ``make setup`` installs) where
pyproject gives a range; such an exact pin is accepted when pyproject's range admits it. Every
other package must carry the same specifier in both files. (tomllib is stdlib; yaml and
packaging come with transformers, a core dependency.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["dev"]
    return _by_name(lines, "pyproject.toml")


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def environment_pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip section"
    return sections[0]


def environment_requirements() -> dict[str, Requirement]:
    lines = [s for s in environment_pip_section(environment()) if not s.startswith("-")]
    return _by_name(lines, "environment.yml")


def _by_name(lines: list[str], source: str) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    names = [canonicalize_name(r.name) for r in reqs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"{source} lists {duplicates} more than once"
    return dict(zip(names, reqs, strict=True))


def _exact_pin(spec: SpecifierSet) -> str | None:
    specs = list(spec)
    if len(specs) == 1 and specs[0].operator in ("==", "==="):
        return specs[0].version
    return None


def compare(pyproject: dict[str, Requirement], env: dict[str, Requirement]) -> list[str]:
    """Every disagreement between the two dependency lists, as readable lines."""
    problems = []
    for name in sorted(pyproject.keys() - env.keys()):
        problems.append(f"{name} is in pyproject.toml but not in environment.yml")
    for name in sorted(env.keys() - pyproject.keys()):
        problems.append(f"{name} is in environment.yml but not in pyproject.toml")
    for name in sorted(pyproject.keys() & env.keys()):
        left, right = pyproject[name], env[name]
        if left.extras != right.extras or left.marker != right.marker:
            problems.append(f"{name}: extras or markers differ ({left} vs {right})")
        pin = _exact_pin(right.specifier)
        if pin is not None and left.specifier != right.specifier:
            if not left.specifier.contains(pin, prereleases=True):
                problems.append(f"{name}: environment.yml pins {pin}, outside {left.specifier}")
        elif left.specifier != right.specifier:
            problems.append(
                f"{name}: pyproject.toml says {left.specifier or 'any'}, "
                f"environment.yml says {right.specifier or 'any'}"
            )
    return problems


def test_dependency_lists_agree():
    assert compare(pyproject_requirements(), environment_requirements()) == []


def test_torch_pin_is_deliberate_and_admitted():
    py, env = pyproject_requirements()["torch"], environment_requirements()["torch"]
    pin = _exact_pin(env.specifier)
    assert pin is not None, "environment.yml should pin torch exactly"
    assert _exact_pin(py.specifier) is None, "pyproject.toml should give torch a range"
    assert py.specifier.contains(pin)
    # the Makefile installs the same build first
    make_pins = set(re.findall(r"torch==([0-9][0-9.]*)", (ROOT / "Makefile").read_text()))
    assert make_pins == {pin}


def test_environment_installs_the_package_and_python():
    env = environment()
    assert "-e ." in environment_pip_section(env)
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pythons) == 1
    version = pythons[0].split("=", 1)[1]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{version}.0")


def _reqs(*lines: str) -> dict[str, Requirement]:
    return _by_name(list(lines), "test")


@pytest.mark.parametrize(
    ("pyproject", "env", "fragment"),
    [
        (("numpy>=1.26",), ("numpy>=1.25",), "numpy: pyproject.toml says >=1.26"),
        (("numpy>=1.26", "tqdm"), ("numpy>=1.26",), "tqdm is in pyproject.toml but not"),
        (("numpy",), ("numpy", "scipy"), "scipy is in environment.yml but not"),
        (("torch>=2.5,<=2.13.0",), ("torch==2.14.0",), "pins 2.14.0, outside"),
        (("torch>=2.5",), ("torch",), "pyproject.toml says >=2.5, environment.yml says any"),
    ],
)
def test_compare_reports_disagreements(pyproject, env, fragment):
    problems = compare(_reqs(*pyproject), _reqs(*env))
    assert any(fragment in p for p in problems), problems


def test_compare_accepts_admitted_pin_and_equal_specifiers():
    assert (
        compare(_reqs("torch>=2.5,<=2.13.0", "Numpy>=1.26"), _reqs("torch==2.13.0", "numpy>=1.26"))
        == []
    )


def constraints() -> dict[str, Requirement]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return _by_name([s for s in lines if s.strip() and not s.startswith("#")], "constraints.txt")


def test_constraints_pin_every_dependency_inside_pyproject_ranges():
    """make setup installs with constraints.txt: every dependency pyproject names is pinned
    there to one exact version that pyproject's range admits (the lock reproduces results)."""
    pins = constraints()
    problems = []
    for name, req in pyproject_requirements().items():
        pin = pins.get(name)
        version = _exact_pin(pin.specifier) if pin else None
        if version is None:
            problems.append(f"{name}: no exact pin in constraints.txt")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{name}: pinned {version}, outside pyproject's {req.specifier}")
    assert not problems, problems
