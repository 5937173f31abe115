"""The README's results block is what ``lshlib.report.readme`` generates from ``results/``."""

from __future__ import annotations

import pytest

from lshlib.paths import REPO_ROOT, data_dir
from lshlib.report import readme


def test_generated_block_replaces_only_itself(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(f"intro\n{readme.BEGIN}\nstale 0.1234\n{readme.END}\noutro\n")
    assert readme.update_readme(path) is True
    text = path.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale" not in text
    assert readme.update_readme(path) is False  # idempotent
    path.write_text("no markers")
    with pytest.raises(ValueError, match="no generated results block"):
        readme.update_readme(path)


@pytest.mark.skipif(not (data_dir() / "corpus").is_dir(), reason="needs LSHLIB_DATA_DIR")
def test_readme_agrees_with_results():
    text = (REPO_ROOT / "README.md").read_text()
    start, end = text.index(readme.BEGIN), text.index(readme.END) + len(readme.END)
    assert text[start:end] == readme.results_section("laptop"), (
        "README results block is stale: run `python -m lshlib.report.readme`"
    )
