"""The pre-registered plateau exit rule and the survival statistics: synthetic curves and
textbook cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from lshlib.experiments import survival
from lshlib.experiments.survival import Exit

STEPS = list(range(500, 16_001, 500))  # evaluations every 500 steps, as in the plateau runs


def curve(value) -> list[dict]:
    """An eval curve with ``eval_accuracy = value(step)`` at every step of STEPS."""
    return [{"step": s, "eval_accuracy": value(s), "eval_loss": 7.0} for s in STEPS]


def test_the_pre_registered_constants():
    assert survival.LEVEL_STEPS == (2000, 6000) and survival.SCAN_AFTER == 6000
    assert survival.MARGIN == 0.02 and survival.SENSITIVITY_MARGINS == (0.01, 0.03)
    assert survival.HORIZON == 16_000
    doc = " ".join(survival.__doc__.split())
    assert "PRE-REGISTERED" in doc
    primary = "one-sided log-rank test of lsh_paper against the baseline, p by exact permutation"
    assert primary in doc


def test_a_clear_rise_exits_at_the_first_confirmed_point():
    # flat 0.13 up to 9,500, then linear to 0.20 at 16,000: 0.13 + 0.07 * (s - 9500) / 6500.
    # level 0.13, threshold 0.15: 11,000 gives 0.14615 (below), 11,500 gives 0.15154 and
    # 12,000 gives 0.15692 (both above) -> exit at 11,500.
    rise = curve(lambda s: 0.13 + 0.07 * max(0, s - 9500) / 6500)
    e = survival.exit_step(rise)
    level, threshold = pytest.approx(0.13), pytest.approx(0.15)
    assert e == Exit(True, 11_500, level, 0.02, threshold, e.accuracy_at_exit)
    assert e.accuracy_at_exit == pytest.approx(0.13 + 0.07 * 2000 / 6500) and e.event == 1
    assert survival.describe(e) == (
        "exits at step 11,500 (accuracy 0.152 >= level 0.130 + 0.02, "
        "confirmed at the next evaluation)"
    )


def test_a_flat_noisy_run_is_censored_at_its_last_evaluation():
    jitter = np.random.default_rng(0).uniform(-0.005, 0.005, len(STEPS))
    noise = dict(zip(STEPS, jitter, strict=True))
    e = survival.exit_step(curve(lambda s: 0.13 + noise[s]))
    assert not e.exited and e.event == 0 and e.step == 16_000 and e.accuracy_at_exit is None
    assert e.threshold == e.level + 0.02
    assert survival.describe(e) == (
        f"censored at step 16,000 (never >= level {e.level:.3f} + 0.02 on two evaluations in a row)"
    )


def test_a_one_evaluation_spike_is_not_an_exit():
    spike = curve(lambda s: 0.17 if s == 8000 else 0.13)
    flat = Exit(False, 16_000, pytest.approx(0.13), 0.02, pytest.approx(0.15), None)
    assert survival.exit_step(spike) == flat
    # the spike is passed over and a later rise confirmed on two evaluations is the exit
    later = curve(lambda s: 0.17 if s == 8000 or s >= 12_000 else 0.13)
    e = survival.exit_step(later)
    assert e.exited and e.step == 12_000 and e.accuracy_at_exit == 0.17


def test_a_candidate_at_the_last_evaluation_is_censored():
    last = survival.exit_step(curve(lambda s: 0.20 if s == 16_000 else 0.13))
    assert not last.exited and last.step == 16_000
    two = survival.exit_step(curve(lambda s: 0.20 if s >= 15_500 else 0.13))
    assert two.exited and two.step == 15_500
    # a run stopped early is censored at its own last evaluation, not at HORIZON
    short = survival.exit_step(curve(lambda s: 0.13)[:20])
    assert not short.exited and short.step == 10_000


def test_evaluations_up_to_6000_are_never_exits():
    # 0.30 at 5,500 and 6,000: confirmed by each other but not scanned (scan starts > 6,000).
    # They also raise the level: (7 * 0.13 + 2 * 0.30) / 9 = 1.51 / 9 = 0.16778.
    early = curve(lambda s: 0.30 if s in (5500, 6000) else 0.13)
    e = survival.exit_step(early)
    assert not e.exited and e.step == 16_000 and e.level == pytest.approx(1.51 / 9)
    # 6,000 and 6,500 high: 6,000 is not scanned and 6,500 has no confirmation at 7,000
    edge = survival.exit_step(curve(lambda s: 0.30 if s in (6000, 6500) else 0.13))
    assert not edge.exited
    # 6,500 and 7,000 high: the first scanned pair exits at 6,500
    first = survival.exit_step(curve(lambda s: 0.30 if s in (6500, 7000) else 0.13))
    assert first.exited and first.step == 6500


def test_level_is_the_mean_over_2000_to_6000_inclusive():
    # value = step / 100,000; the window holds 2,000, 2,500, ..., 6,000: 0.02 .. 0.06, mean 0.04.
    # 1,500 (0.015) and 6,500 (0.065) lie outside and must not move it.
    ramp = curve(lambda s: s / 100_000)
    e = survival.exit_step(ramp)
    assert e.level == pytest.approx(0.04) and e.threshold == pytest.approx(0.06)
    # threshold 0.06: 6,500 (0.065) and 7,000 (0.07) are above -> exit at 6,500
    assert e.exited and e.step == 6500 and e.accuracy_at_exit == pytest.approx(0.065)


def test_items_without_the_key_are_skipped_and_order_does_not_matter():
    points = curve(lambda s: 0.20 if s >= 9000 else 0.13)
    messy = [{"step": 100, "eval_loss": 9.0}, *reversed(points), {"step": 9250, "eval_loss": 5.0}]
    assert survival.exit_step(messy) == survival.exit_step(points)
    assert survival.exit_step(points).step == 9000
    # another key: the rule reads whatever key it is given
    other = [{"step": p["step"], "acc": p["eval_accuracy"]} for p in points]
    assert survival.exit_step(other, key="acc") == survival.exit_step(points)


def test_threshold_comparison_is_exactly_ge():
    level = 0.25  # exact in binary, as is 0.25 + 0.25 = 0.5
    at = curve(lambda s: 0.5 if s >= 10_000 else level)
    e = survival.exit_step(at, margin=0.25)
    assert e.threshold == 0.5 and e.exited and e.step == 10_000


def test_sensitivity_reports_the_three_margins():
    rise = curve(lambda s: 0.13 + 0.07 * max(0, s - 9500) / 6500)
    out = survival.sensitivity(rise)
    assert list(out) == [0.01, 0.02, 0.03]
    # thresholds 0.14, 0.15, 0.16: values 0.13 + 0.07 * k / 13 at 9,500 + 500 k; first k with
    # value >= threshold: k = 2 (0.14077), k = 4 (0.15154), k = 6 (0.16231).
    assert [e.step for e in out.values()] == [10_500, 11_500, 12_500]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.0, 0.4), min_size=len(STEPS), max_size=len(STEPS)),
    st.lists(st.floats(0.001, 0.1), min_size=3, max_size=3),
)
def test_a_larger_margin_never_exits_earlier(values, margins):
    points = [{"step": s, "eval_accuracy": v} for s, v in zip(STEPS, values, strict=True)]
    exits = survival.sensitivity(points, sorted(margins))
    when = [e.step if e.exited else math.inf for e in exits.values()]
    assert when == sorted(when)
    for e in exits.values():  # and each exit is the first scanned, confirmed point
        above = [v >= e.threshold for v in values]
        pairs = zip(STEPS, above, above[1:], strict=False)
        first = next((s for s, now, then in pairs if s > 6000 and now and then), None)
        assert (e.step if e.exited else None) == first
        assert e.exited or e.step == 16_000


def test_train_loss_exit_by_hand():
    losses = [9.0, 8.0, 7.0, 7.0, 7.1, 6.9, 7.0, 6.8, 6.6, 6.5, 6.4, 6.4]
    train = [{"step": 100 * (i + 1), "loss": v} for i, v in enumerate(losses)]
    # window 3: medians 9.0 (upper median of two), 8.0, 8.0, 7.0, 7.0, 7.0, 7.0, 6.9, 6.8, 6.6,
    # 6.5, 6.4. reference 500 -> level 7.0; first later median <= 6.7: 6.6 at step 1000.
    e = survival.train_loss_exit(train, reference_step=450, drop=0.3, window=3)
    assert e == Exit(True, 1000, 7.0, 0.3, pytest.approx(6.7), None)
    phrase = "exits at step 1,000 (smoothed training loss <= level 7.000 - 0.3)"
    assert survival.describe(e) == phrase
    never = survival.train_loss_exit(train, reference_step=500, drop=1.0, window=3)
    assert not never.exited and never.step == 1200 and never.threshold == pytest.approx(6.0)
    assert "censored at step 1,200 (smoothed training loss never <=" in survival.describe(never)


def test_kaplan_meier_textbook_example():
    # times 3, 5, 5, 8, 10 with events 1, 1, 0, 1, 0:
    # t=3: 5 at risk, 1 event -> 4/5 = 0.8; t=5: 4 at risk (the run censored at 5 still is),
    # 1 event -> 0.8 * 3/4 = 0.6; t=8: 2 at risk (8, 10), 1 event -> 0.6 * 1/2 = 0.3.
    km = survival.kaplan_meier([3, 5, 5, 8, 10], [1, 1, 0, 1, 0])
    assert [t for t, _ in km] == [0, 3, 5, 8]
    assert [s for _, s in km] == pytest.approx([1.0, 0.8, 0.6, 0.3])
    assert survival.kaplan_meier([16_000, 16_000], [False, False]) == [(0, 1.0)]
    # tied events: 2 at risk at 4, both exit -> 0
    assert survival.kaplan_meier([4, 4], [True, True]) == [(0, 1.0), (4, 0.0)]


def test_logrank_by_hand_and_symmetry():
    # a: times 1, 3 (both events); b: times 2 (event), 4 (censored).
    # t=1: n_a=2, n=4, d=1 -> E 2/4, V 1*(1/2)(1/2)(3/3) = 1/4
    # t=2: n_a=1, n=3, d=1 -> E 1/3, V (1/3)(2/3)(2/2) = 2/9
    # t=3: n_a=1, n=2, d=1 -> E 1/2, V (1/2)(1/2)(1/1) = 1/4
    # O_a = 2, E_a = 4/3, V = 13/18, z = (2/3) / sqrt(13/18) = 0.78446
    r = survival.logrank([1, 3], [1, 1], [2, 4], [1, 0])
    assert r["observed_a"] == 2 and r["expected_a"] == pytest.approx(4 / 3)
    assert r["variance"] == pytest.approx(13 / 18)
    assert r["z"] == pytest.approx((2 / 3) / math.sqrt(13 / 18))
    assert r["p_one_sided"] == pytest.approx(scipy_stats.norm.sf(r["z"]))
    assert r["p_two_sided"] == pytest.approx(2 * scipy_stats.norm.sf(r["z"]))
    swapped = survival.logrank([2, 4], [1, 0], [1, 3], [1, 1])
    assert swapped["z"] == pytest.approx(-r["z"])
    assert swapped["p_two_sided"] == pytest.approx(r["p_two_sided"])


def test_logrank_ties_use_the_hypergeometric_variance():
    # a: 2, 2 (events), 5 (censored); b: 2, 4 (events).
    # t=2: n_a=3, n=5, d=3 (2 in a) -> E 3*3/5 = 1.8, V 3*(3/5)(2/5)(2/4) = 0.36
    # t=4: n_a=1, n=2, d=1 (in b) -> E 1/2, V (1/2)(1/2)(1/1) = 0.25
    # O_a = 2, E_a = 2.3, V = 0.61, z = -0.3 / sqrt(0.61)
    r = survival.logrank([2, 2, 5], [1, 1, 0], [2, 4], [1, 1])
    assert (r["observed_a"], r["expected_a"]) == pytest.approx((2, 2.3))
    assert r["variance"] == pytest.approx(0.61) and r["z"] == pytest.approx(-0.3 / math.sqrt(0.61))
    none = survival.logrank([16_000] * 3, [0] * 3, [16_000] * 3, [0] * 3)
    assert none["variance"] == 0 and none["z"] == 0 and none["p_one_sided"] == 1.0


survival_times = st.lists(
    st.tuples(st.integers(1, 12).map(lambda k: 1000 * k), st.booleans()), min_size=1, max_size=8
)


@settings(max_examples=60, deadline=None)
@given(survival_times, survival_times)
def test_logrank_agrees_with_scipy_and_is_antisymmetric(a, b):
    (ta, ea), (tb, eb) = zip(*a, strict=True), zip(*b, strict=True)
    r = survival.logrank(ta, ea, tb, eb)
    assert survival.logrank(tb, eb, ta, ea)["z"] == pytest.approx(-r["z"], abs=1e-12)
    if r["variance"] > 0:
        ref = scipy_stats.logrank(
            scipy_stats.CensoredData.right_censored(ta, np.logical_not(ea)),
            scipy_stats.CensoredData.right_censored(tb, np.logical_not(eb)),
        )
        assert r["z"] == pytest.approx(ref.statistic)


def test_paired_permutation_all_a_exit_early():
    pairs = [((8000 + 500 * i, 1), (16_000, 0)) for i in range(5)]
    r = survival.paired_logrank_permutation(pairs)
    assert r["permutations"] == 32 and r["n_pairs"] == 5
    assert r["p_exact_one_sided"] == 1 / 32 and r["z"] > 0
    a, b = zip(*pairs, strict=True)
    direct = survival.logrank(*zip(*a, strict=True), *zip(*b, strict=True))
    assert r["z"] == pytest.approx(direct["z"]) and r["p_one_sided"] == direct["p_one_sided"]
    # the other way round every labelling is at least as extreme
    flipped = survival.paired_logrank_permutation([(b, a) for a, b in pairs])
    assert flipped["p_exact_one_sided"] == 1.0 and flipped["z"] == pytest.approx(-r["z"])


def test_paired_permutation_identical_arms_give_no_evidence():
    pairs = [((t, e), (t, e)) for t, e in [(9000, 1), (12_000, 1), (16_000, 0), (7000, 1)]]
    r = survival.paired_logrank_permutation(pairs)
    assert r["z"] == 0 and r["p_exact_one_sided"] == 1.0 and r["p_one_sided"] == 0.5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.tuples(st.integers(1, 8).map(lambda k: 2000 * k), st.booleans()),
            st.tuples(st.integers(1, 8).map(lambda k: 2000 * k), st.booleans()),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_paired_permutation_p_is_a_share_of_labellings_never_below_its_floor(pairs):
    r = survival.paired_logrank_permutation(pairs)
    n = len(pairs)
    assert r["permutations"] == 2**n
    assert 2.0**-n <= r["p_exact_one_sided"] <= 1.0
    assert (r["p_exact_one_sided"] * 2**n) == int(r["p_exact_one_sided"] * 2**n)
    # swapping every pair negates z; one of the two directions has p >= 1/2
    flipped = survival.paired_logrank_permutation([(b, a) for a, b in pairs])
    assert flipped["z"] == pytest.approx(-r["z"], abs=1e-12)
    assert max(r["p_exact_one_sided"], flipped["p_exact_one_sided"]) >= 0.5


def test_fisher_by_hand():
    # 5/5 vs 0/5: the only table as extreme has probability 1 / C(10, 5) = 1/252
    r = survival.fisher_exited(5, 5, 0, 5)
    assert r["table"] == ((5, 0), (0, 5)) and r["p_one_sided"] == pytest.approx(1 / 252)
    assert r["odds_ratio"] == math.inf
    # 3/5 vs 1/5: 4 exits in all; P(a has >= 3 of them) = (C(4,3)C(6,2) + C(4,4)C(6,1)) / 252
    # = (60 + 6) / 252 = 11/42; odds ratio 3*4 / (2*1) = 6
    r = survival.fisher_exited(3, 5, 1, 5)
    assert r["p_one_sided"] == pytest.approx(11 / 42) and r["odds_ratio"] == pytest.approx(6)
    assert survival.fisher_exited(0, 5, 5, 5)["p_one_sided"] == pytest.approx(1.0)


def test_describe_formats_from_the_values():
    e = Exit(True, 10_500, 0.135, 0.02, 0.155, 0.161)
    assert survival.describe(e) == (
        "exits at step 10,500 (accuracy 0.161 >= level 0.135 + 0.02, "
        "confirmed at the next evaluation)"
    )
    c = Exit(False, 16_000, 0.135, 0.03, 0.165, None)
    assert survival.describe(c) == (
        "censored at step 16,000 (never >= level 0.135 + 0.03 on two evaluations in a row)"
    )


FLAT = curve(lambda s: 0.13)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: survival.exit_step([]), "empty"),
        (lambda: survival.exit_step(FLAT, margin=0), "margin.*> 0, got 0"),
        (lambda: survival.exit_step(FLAT, margin=-0.02), r"got -0\.02"),
        (lambda: survival.exit_step(FLAT, margin=math.nan), "got nan"),
        (
            lambda: survival.exit_step([FLAT[0], FLAT[13]]),
            r"2000 <= step <= 6000.*steps present: \[500, 7000\]",
        ),
        (
            lambda: survival.exit_step(
                [*FLAT[:10], {"step": 5250, "eval_accuracy": math.nan}, *FLAT[10:]]
            ),
            "NaN.*at step 5250",
        ),
        (lambda: survival.exit_step([*FLAT, FLAT[4]]), r"step\(s\) \[2500\]"),
        (lambda: survival.exit_step(FLAT, key="eval_f1"), "'eval_f1'"),
        (
            lambda: survival.train_loss_exit([{"step": 100, "loss": 9.0}], reference_step=500),
            "reference_step 500 is past the last logged step 100",
        ),
        (lambda: survival.train_loss_exit([{"step": 100, "loss": 9.0}], 50, drop=0), "drop.*0"),
        (lambda: survival.train_loss_exit([{"step": 100, "loss": 9.0}], 50, window=0), "window"),
        (lambda: survival.kaplan_meier([], []), "non-empty"),
        (lambda: survival.kaplan_meier([1, 2], [1]), "differ in length: 2 vs 1"),
        (lambda: survival.kaplan_meier([1, 2], [1, 2]), "0/1 or bool, got 2"),
        (lambda: survival.kaplan_meier([1, 2], [1, 0.5]), "got 0.5"),
        (lambda: survival.kaplan_meier([0, 2], [1, 1]), r"> 0, got \[0, 2\]"),
        (lambda: survival.logrank([1], [1], [], []), "group b.*non-empty"),
        (lambda: survival.paired_logrank_permutation([]), "1 to 16 seed pairs, got 0"),
        (
            lambda: survival.paired_logrank_permutation([((1, 1), (2, 0))] * 17),
            "1 to 16 seed pairs, got 17",
        ),
        (lambda: survival.paired_logrank_permutation([((1, 1), (2, 0, 3))]), "each pair"),
        (lambda: survival.fisher_exited(6, 5, 0, 5), r"exited_a.*0\.\.5, got 6"),
        (lambda: survival.fisher_exited(0, 5, -1, 5), r"exited_b.*0\.\.5, got -1"),
        (lambda: survival.fisher_exited(0, 0, 0, 5), "n_a.*>= 1, got 0"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_unpaired_permutation_logrank_by_hand():
    """5 runs per arm: all of a exit before any of b, which is censored: the observed labelling
    is the most extreme of C(10, 5) = 252, so p = 1/252; identical arms give p near 1."""
    early = survival.logrank_permutation([1, 2, 3, 4, 5], [1] * 5, [16] * 5, [0] * 5)
    assert early["permutations"] == 252 and early["p_exact_one_sided"] == pytest.approx(1 / 252)
    assert early["z"] == pytest.approx(
        survival.logrank([1, 2, 3, 4, 5], [1] * 5, [16] * 5, [0] * 5)["z"]
    )
    same = survival.logrank_permutation([16] * 5, [0] * 5, [16] * 5, [0] * 5)
    assert same["p_exact_one_sided"] == 1.0
    reverse = survival.logrank_permutation([16] * 5, [0] * 5, [1, 2, 3, 4, 5], [1] * 5)
    assert reverse["p_exact_one_sided"] == 1.0
    # 3 of 5 exit in a, none in b: the labellings putting all 3 exits in a: C(7, 2) = 21 of 252
    mixed = survival.logrank_permutation([9, 10, 11, 16, 16], [1, 1, 1, 0, 0], [16] * 5, [0] * 5)
    assert mixed["p_exact_one_sided"] == pytest.approx(21 / 252)
    with pytest.raises(ValueError, match="at most 20 runs in all"):
        survival.logrank_permutation([1] * 11, [1] * 11, [2] * 11, [0] * 11)
