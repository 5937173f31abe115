"""Compare what two checkouts' ``make figures`` wrote: the same results, whatever the machine.

``python -m lshlib.report.compare BEFORE AFTER`` walks ``figures/*.png``, ``notebooks/*.ipynb``
and ``results/<scale>/**/*.json`` of two checkout folders and prints every difference:

* PNGs by their decoded pixels (PNG metadata and compression may differ);
* notebooks by the text of each code cell's outputs (streams, ``text/plain``, errors) and the
  decoded pixels of their images, code cells matched in order, the checkout's own folder written
  ``<root>``, and a cell tagged ``measurement`` (a live timing, in either notebook) compared by
  the kinds of its outputs only; the code itself may differ (that is what a refactor changes);
* JSON files key by key, leaving out machine and timing fields (:data:`IGNORED`).

It exits 1 when anything differs, so a refactor that changes no result passes.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from PIL import Image

__all__ = ["IGNORED", "compare_trees", "same_json", "same_notebook", "same_png", "main"]

# Keys whose values depend on the machine or the clock, never on the code's results.
IGNORED = re.compile(
    r"^(machine|commit|dirty|loadavg|load_start|load_end|cpu|platform|finished_utc|finished_at|"
    r"started_at|.*seconds.*|.*_s|wall_.*|.*per_s.*|.*_per_second|.*sittings?)$"
)


# The tag of a notebook cell whose output is a live measurement of this machine (a profile).
MEASUREMENT = "measurement"


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def same_png(a: bytes, b: bytes) -> str | None:
    """``None`` when the two PNGs decode to the same pixels, else what differs."""
    pa, pb = _pixels(a), _pixels(b)
    if pa.shape != pb.shape:
        return f"size {pa.shape[1]}x{pa.shape[0]} vs {pb.shape[1]}x{pb.shape[0]}"
    changed = np.any(pa != pb, axis=-1)
    if changed.any():
        return f"{int(changed.sum())} of {changed.size} pixels differ"
    return None


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not IGNORED.match(str(k))}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _diff(a: Any, b: Any, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += _diff(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def same_json(a: str, b: str) -> list[str]:
    """The differences between two JSON texts, machine and timing fields left out."""
    return _diff(_strip(json.loads(a)), _strip(json.loads(b)), "")


def _rooted(text: str, root: Path) -> str:
    """``text`` with the checkout's folder (or any folder above its figures/, results/ or
    notebooks/) written ``<root>``."""
    text = text.replace(str(root), "<root>")
    return re.sub(r"/[^\s'\"]*/(figures|results|notebooks)/", r"<root>/\1/", text)


def _outputs(path: Path, root: Path) -> list[list[tuple[str, Any]]]:
    cells = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        items: list[tuple[str, Any]] = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                items.append(("text", out.text))
            elif out.output_type == "error":
                items.append(("text", f"{out.ename}: {out.evalue}"))
            else:
                data = out.get("data", {})
                if "image/png" in data:
                    items.append(("png", base64.b64decode(data["image/png"])))
                elif "text/plain" in data:
                    items.append(("text", data["text/plain"]))
        items = [(k, _rooted(v, root)) if k == "text" else (k, v) for k, v in items]
        if MEASUREMENT in cell.metadata.get("tags", []):  # a live timing: its kinds only
            items = [(k, None) for k, _ in items]
        cells.append(items)
    return cells


def same_notebook(a: Path, root_a: Path, b: Path, root_b: Path) -> list[str]:
    """The differences between two executed notebooks' outputs (code matched cell by cell)."""
    ca, cb = _outputs(a, root_a), _outputs(b, root_b)
    if len(ca) != len(cb):
        return [f"{len(ca)} vs {len(cb)} code cells"]
    out = []
    for i, (x, y) in enumerate(zip(ca, cb, strict=True)):
        if [k for k, _ in x] != [k for k, _ in y]:
            out.append(f"code cell {i}: outputs {[k for k, _ in x]} vs {[k for k, _ in y]}")
            continue
        for (kind, u), (_, v) in zip(x, y, strict=True):
            if u is None or v is None:  # a measurement in either notebook
                continue
            if kind == "png" and (why := same_png(u, v)):
                out.append(f"code cell {i}: image: {why}")
            elif kind == "text" and u != v:
                out.append(f"code cell {i}: text differs: {u[:120]!r} vs {v[:120]!r}")
    return out


def compare_trees(before: Path, after: Path, scale: str = "laptop") -> dict[str, list[str]]:
    """``{relative path: differences}`` for every figure, notebook and result of the two
    checkouts that differs (a file present in only one of them included)."""
    patterns = ("figures/*.png", "notebooks/*.ipynb", f"results/{scale}/**/*.json")
    found: dict[str, list[str]] = {}
    for pattern in patterns:
        names = {p.relative_to(before).as_posix() for p in before.glob(pattern)}
        names |= {p.relative_to(after).as_posix() for p in after.glob(pattern)}
        for name in sorted(names):
            a, b = before / name, after / name
            if not (a.is_file() and b.is_file()):
                found[name] = [f"only in {'before' if a.is_file() else 'after'}"]
            elif name.endswith(".png"):
                why = same_png(a.read_bytes(), b.read_bytes())
                found.update({name: [why]} if why else {})
            elif name.endswith(".ipynb"):
                found.update({name: d} if (d := same_notebook(a, before, b, after)) else {})
            elif d := same_json(a.read_text(), b.read_text()):
                found[name] = d
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lshlib.report.compare", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--scale", default="laptop")
    ns = parser.parse_args(argv)
    found = compare_trees(ns.before, ns.after, ns.scale)
    for name, diffs in found.items():
        print(f"{name}:")
        print("\n".join(f"  {d}" for d in diffs[:20]))
    counted = sum(len(list(ns.before.glob(p))) for p in ("figures/*.png", "notebooks/*.ipynb"))
    print(f"{len(found)} files differ ({counted} figures and notebooks in {ns.before} compared)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
