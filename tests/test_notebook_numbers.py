"""Every measured number a notebook's prose quotes is printed by that notebook's own outputs.

A "measured number" in a markdown cell is any figure with a decimal point (``0.2529``), a percent
sign (``4.5%``) or an ``x`` ratio (``4.68x``). It must appear in an output of the same notebook
(stream, ``text/plain``, ``text/html`` or ``text/markdown``), as the same digits: ``0.72`` is
not matched by ``0.7234``, and ``8%`` needs ``8%`` printed. Deliberate exceptions are marked: a
markdown cell tagged ``paper-numbers`` may also quote numbers that appear in ``docs/paper.md``
(the paper's reported figures and configuration). The committed notebooks hold laptop outputs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lshlib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
PAPER = (REPO_ROOT / "docs" / "paper.md").read_text()
NUMBER = re.compile(r"(?<![\w.])(\d[\d,]*\.\d+|\d[\d,]*(?:\.\d+)?\s?%|\d[\d,]*(?:\.\d+)?x)(?!\w)")
PAPER_TAG = "paper-numbers"


def quoted_numbers(markdown: str) -> list[str]:
    """The measured-looking numbers of a markdown text, as written."""
    return [m.group(1) for m in NUMBER.finditer(markdown)]


def printed(number: str, text: str) -> bool:
    """Whether ``number`` (as quoted) appears in ``text`` with the same digits: a decimal by its
    digits, an integer percent or ratio with its sign; thousands separators are ignored."""
    token = number.replace(",", "").replace(" ", "")
    core = re.sub(r"[%x]$", "", token)
    needle = core if "." in core else token
    haystack = text.replace(",", "")
    return re.search(r"(?<![\d.])" + re.escape(needle) + r"(?!\d)", haystack) is not None


def outputs_text(notebook: dict) -> str:
    parts = []
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for kind, value in out.get("data", {}).items():
                if kind.startswith("text/"):
                    parts.append("".join(value))
    return "\n".join(parts)


def unprinted(notebook: dict) -> list[str]:
    """``cell N: number`` for each quoted number no output prints (and no exception covers)."""
    text = outputs_text(notebook)
    bad = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        paper_ok = PAPER_TAG in cell.get("metadata", {}).get("tags", [])
        for number in quoted_numbers("".join(cell["source"])):
            if printed(number, text) or (paper_ok and printed(number, PAPER)):
                continue
            bad.append(f"cell {i}: {number}")
    return bad


def test_the_check_tells_printed_from_typed_numbers():
    assert quoted_numbers("gap 1.6 points, 8% of pairs, 4.68x faster, 2 layers, v1.1 x") == [
        "1.6",
        "8%",
        "4.68x",
    ]
    assert printed("0.2529", "P = 0.2529\n") and not printed("0.72", "weight 0.7234")
    assert printed("8%", "density 8%") and not printed("8%", "density 0.08, 8 bits")
    assert printed("4.68x", "ratio 4.68") and printed("12,345.5", "12345.5")
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["paper: 0.1505, ours 0.0462"]}
    out = {"cell_type": "code", "outputs": [{"output_type": "stream", "text": "acc 0.0462"}]}
    assert unprinted({"cells": [cell, out]}) == ["cell 0: 0.1505"]
    cell["metadata"]["tags"] = [PAPER_TAG]
    assert unprinted({"cells": [cell, out]}) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_quoted_number_is_printed(path: Path):
    assert unprinted(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_per_cell_execution_timestamps(path: Path):
    """Re-executing a notebook must not dirty it with timestamps (``make figures`` runs
    nbconvert with ``record_timing=False``; committed notebooks carry none)."""
    cells = json.loads(path.read_text())["cells"]
    assert [i for i, c in enumerate(cells) if "execution" in c.get("metadata", {})] == []
