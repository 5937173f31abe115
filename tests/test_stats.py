"""Seed and test-example statistics: values checked by hand and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lshlib.experiments import stats


def test_seed_summary_and_paired_difference_by_hand():
    s = stats.seed_summary([0.80, 0.82, 0.81])
    assert s["mean"] == pytest.approx(0.81) and s["sd"] == pytest.approx(0.01)
    assert math.isnan(stats.seed_summary([0.8])["sd"])
    d = stats.paired_seed_difference(
        {1: 0.82, 2: 0.80, 3: 0.81, 9: 0.5}, {1: 0.80, 2: 0.79, 3: 0.80}
    )
    # differences 0.02, 0.01, 0.01: mean 0.01333, sd 0.005774, t(0.975, 2) = 4.3027
    half = 4.302652729911275 * 0.005773502691896 / math.sqrt(3)
    assert d["n"] == 3 and d["mean"] == pytest.approx(0.04 / 3)
    assert (d["low"], d["high"]) == pytest.approx((0.04 / 3 - half, 0.04 / 3 + half))
    assert "within noise" in stats.in_words(d["low"], d["high"])
    assert "above 0" in stats.in_words(0.01, 0.02) and "below 0" in stats.in_words(-2, -1)
    assert "one seed" in stats.in_words(math.nan, math.nan)


def test_t_interval_covers_the_true_difference_at_its_level():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        a = dict(enumerate(rng.normal(0.3, 1.0, 5)))
        b = dict(enumerate(rng.normal(0.0, 1.0, 5)))
        d = stats.paired_seed_difference(a, b)
        hits += d["low"] <= 0.3 <= d["high"]
    assert 0.93 <= hits / 2000 <= 0.97


def test_bootstrap_and_mcnemar_on_known_splits():
    a = np.array([1] * 60 + [0] * 40)
    b = np.array([1] * 50 + [0] * 50)
    boot = stats.paired_bootstrap(a, b, resamples=2000)
    assert boot["mean"] == pytest.approx(0.10) and boot["low"] > 0 and boot["high"] < 0.2
    m = stats.mcnemar(a, b)  # a right on 10 examples b misses, never the reverse
    assert (m["only_a"], m["only_b"]) == (10, 0) and m["p_value"] == pytest.approx(2 * 0.5**10)
    assert stats.mcnemar(a, a)["p_value"] == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.seed_summary([]), "non-empty"),
        (lambda: stats.seed_summary([1.0, float("nan")]), "NaN"),
        (
            lambda: stats.paired_seed_difference({1: 0.5}, {2: 0.4}),
            r"no shared seeds.*\[1\].*\[2\]",
        ),
        (lambda: stats.paired_seed_difference({1: 0.5}, {1: 0.4}, level=1.5), "level"),
        (lambda: stats.paired_bootstrap([1, 0], [1]), "differ in length: 2 vs 1"),
        (lambda: stats.paired_bootstrap([1, 0], [1, 1], resamples=5), "at least 100, got 5"),
        (lambda: stats.mcnemar([1, 0], [1]), "equal-length"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=12))
def test_bootstrap_interval_contains_the_mean_and_is_antisymmetric(values):
    a = np.array(values)
    b = a[::-1].copy()
    ab = stats.paired_bootstrap(a, b, resamples=200, seed=1)
    ba = stats.paired_bootstrap(b, a, resamples=200, seed=1)
    assert ab["low"] - 1e-12 <= ab["mean"] <= ab["high"] + 1e-12
    assert ab["low"] == pytest.approx(-ba["high"]) and ab["high"] == pytest.approx(-ba["low"])


def test_paired_p_welch_and_holm_by_hand():
    d = stats.paired_seed_difference({1: 0.82, 2: 0.80, 3: 0.81}, {1: 0.80, 2: 0.79, 3: 0.80})
    # t = 0.013333 / (0.0057735 / sqrt 3) = 4.0, df 2: two-sided p = 0.0572
    assert d["p"] == pytest.approx(0.05719, abs=1e-4) and d["df"] == 2
    w = stats.welch_difference([1.0, 2.0, 3.0], [1.0, 1.0, 2.0, 2.0])
    # means 2 and 1.5; variances of the means 1/3 and 1/12; se = sqrt(5/12) = 0.6455;
    # df = (5/12)^2 / ((1/3)^2 / 2 + (1/12)^2 / 3) = 0.17361 / 0.05787 = 3.0; t = 0.7746
    assert w["mean"] == pytest.approx(0.5) and w["df"] == pytest.approx(3.0)
    assert w["p"] == pytest.approx(2 * __import__("scipy").stats.t.sf(0.7746, 3.0), abs=1e-4)
    from scipy.stats import ttest_ind

    assert w["p"] == pytest.approx(ttest_ind([1, 2, 3], [1, 1, 2, 2], equal_var=False).pvalue)
    # Holm: sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone), in the original order
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="at least 2 values per group, got 1 and 3"):
        stats.welch_difference([1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        stats.holm([0.5, 1.5])
