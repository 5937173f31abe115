"""The before/after comparison of two checkouts' figures, notebooks and results."""

from __future__ import annotations

import io
import json

import nbformat
import numpy as np
from PIL import Image, PngImagePlugin

from lshlib.report import compare


def _png(pixels: np.ndarray, text: str = "", level: int = 6) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", text)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", pnginfo=info, compress_level=level)
    return out.getvalue()


def test_pngs_compare_by_pixels_not_bytes():
    pixels = np.zeros((4, 5, 4), dtype=np.uint8)
    a, b = _png(pixels, "matplotlib 3.9", 1), _png(pixels, "matplotlib 3.10", 9)
    assert a != b and compare.same_png(a, b) is None
    changed = pixels.copy()
    changed[1, 2] = 255
    assert compare.same_png(a, _png(changed)) == "1 of 20 pixels differ"
    assert compare.same_png(a, _png(np.zeros((5, 5, 4), np.uint8))) == "size 5x4 vs 5x5"


def test_json_leaves_out_machine_and_timing_fields_only():
    a = {"claims": [{"verdict": "supported"}], "machine": {"cpu": "A"}, "train_seconds": 3.0}
    b = {"claims": [{"verdict": "supported"}], "machine": {"cpu": "B"}, "train_seconds": 9.0}
    assert compare.same_json(json.dumps(a), json.dumps(b)) == []
    b["claims"][0]["verdict"] = "not supported"
    assert compare.same_json(json.dumps(a), json.dumps(b)) == [
        ".claims[0].verdict: 'supported' vs 'not supported'"
    ]


def _notebook(path, outputs, code="x", tags=()):
    cell = nbformat.v4.new_code_cell(code, outputs=outputs)
    cell.metadata["tags"] = list(tags)
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def test_notebooks_compare_outputs_by_text_with_their_own_folder_left_out(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    for root, code in (
        (before, "from lshlib import hashing"),
        (after, "from lshlib.lsh import hashing"),
    ):
        (root / "notebooks").mkdir(parents=True)
        out = nbformat.v4.new_output("stream", text=f"wrote {root}/figures/a.png\n0.1234\n")
        _notebook(root / "notebooks" / "n.ipynb", [out], code)
    assert compare.compare_trees(before, after) == {}
    out = nbformat.v4.new_output("stream", text=f"wrote {after}/figures/a.png\n0.1235\n")
    _notebook(after / "notebooks" / "n.ipynb", [out])
    (diff,) = compare.compare_trees(before, after)["notebooks/n.ipynb"]
    assert diff.startswith("code cell 0: text differs") and "0.1235" in diff
    _notebook(after / "notebooks" / "n.ipynb", [out], tags=["measurement"])
    assert compare.compare_trees(before, after) == {}  # a live timing: kinds only


def test_a_file_in_one_checkout_only_is_a_difference(tmp_path):
    (tmp_path / "a" / "figures").mkdir(parents=True)
    (tmp_path / "b" / "figures").mkdir(parents=True)
    (tmp_path / "a" / "figures" / "f.png").write_bytes(_png(np.zeros((2, 2, 4), np.uint8)))
    assert compare.compare_trees(tmp_path / "a", tmp_path / "b") == {
        "figures/f.png": ["only in before"]
    }
