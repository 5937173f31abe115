"""lshlib.scales: the one LSHLIB_SCALE setting, and the per-scale output folders it selects."""

from __future__ import annotations

import pytest

from lshlib import paths, scales
from lshlib.scales import DEFAULT_SCALE, ENV_VAR, SCALES, check_scale, get_scale


def test_default_is_laptop(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert DEFAULT_SCALE == "laptop"
    assert get_scale() == "laptop"
    monkeypatch.setenv(ENV_VAR, "  ")  # blank counts as unset
    assert get_scale() == "laptop"


@pytest.mark.parametrize("scale", SCALES)
def test_env_var_is_respected(monkeypatch, scale):
    monkeypatch.setenv(ENV_VAR, scale)
    assert get_scale() == scale
    monkeypatch.setenv(ENV_VAR, f" {scale}\n")
    assert get_scale() == scale


def test_argument_overrides_env_var(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert get_scale("paper") == "paper"


def test_scales_are_the_three_documented_ones():
    assert SCALES == ("smoke", "laptop", "paper")
    assert all(check_scale(s) == s for s in SCALES)


@pytest.mark.parametrize("bad", ["huge", "Laptop", "0", "smoke,laptop"])
def test_unknown_scale_lists_valid_ones(monkeypatch, bad):
    monkeypatch.setenv(ENV_VAR, bad)
    with pytest.raises(ValueError, match=r"valid scales are: smoke, laptop, paper") as info:
        get_scale()
    assert repr(bad) in str(info.value)
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(ValueError, match=r"valid scales are: smoke, laptop, paper") as info:
        get_scale(bad)
    assert repr(bad) in str(info.value)


def test_argument_is_not_stripped():
    # the environment is forgiving about whitespace, an explicit argument is not
    with pytest.raises(ValueError, match="'smoke '"):
        get_scale("smoke ")


def test_scale_selects_output_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("LSHLIB_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert paths.figures_dir() == tmp_path / "figures"
    assert paths.results_dir(device="cpu") == tmp_path / "results" / "laptop"
    assert paths.results_dir("laptop", device="cuda") == tmp_path / "results" / "laptop-cuda"
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert paths.figures_dir() == tmp_path / "figures" / "smoke"
    assert paths.results_dir("paper", device="cpu") == tmp_path / "results" / "paper"
    assert (tmp_path / "figures" / "smoke").is_dir()
    monkeypatch.setenv(ENV_VAR, "bogus")
    with pytest.raises(ValueError, match="bogus"):
        paths.figures_dir()


def test_every_per_scale_table_lives_in_scales():
    for table in ("tokenizer", "theory", "analysis", "density", "training/mlm", "training/squad"):
        for scale in ("smoke", "laptop", "paper"):
            assert scales.sizes(table, scale)
    assert scales.sizes("training/mlm", "smoke") is not scales.TRAINING["smoke"]["mlm"]  # a copy
    with pytest.raises(ValueError, match="'bogus'.*valid tables are: tokenizer"):
        scales.sizes("bogus", "smoke")
