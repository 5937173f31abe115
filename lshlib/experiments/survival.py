"""The pre-registered MLM plateau exit rule and the survival statistics that judge it.

A masked-language-model run sits on a plateau (held-out MLM accuracy flat at the unigram
level) and may leave it later. Whether ``lsh_paper`` leaves it sooner than the baseline is a
time-to-event question with censoring (a run that has not left the plateau when it stops at
:data:`HORIZON` says only "not yet"), so it is answered with survival statistics, not with a
mean of exit steps.

The rule and the test were written down before the runs they judge (PRE-REGISTERED); their
constants below are fixed, and any other margin is reported as a sensitivity line only:

* the plateau level is the mean held-out MLM accuracy over the evaluations at steps
  :data:`LEVEL_STEPS` (inclusive);
* a run exits at the first evaluation after step :data:`SCAN_AFTER` whose accuracy is
  ``>= level + MARGIN`` and whose next evaluation is too (one high evaluation alone is noise);
  otherwise it is censored at its last evaluation;
* the margins :data:`SENSITIVITY_MARGINS` are reported beside :data:`MARGIN`;
* the PRIMARY test is a one-sided log-rank test of lsh_paper against the baseline, p by exact
  permutation of the arm labels over all runs of the two arms (:func:`logrank_permutation`),
  because the normal approximation is poor with 5 runs per arm. Amended before any plateau run
  had finished (first version: permutation within seed pairs only): with 5 pairs the within-pair
  p can never fall below 2**-5 = 0.031, so after the claims table's Holm adjustment over its
  family no outcome could ever reach 0.05, a test that cannot answer. The within-pair p
  (:func:`paired_logrank_permutation`; the two arms of a seed share initial weights, data order
  and masks) is reported beside it. Fisher's exact test on "exited by :data:`HORIZON`"
  (:func:`fisher_exited`) and the training-loss detector (:func:`train_loss_exit`) are
  secondary lines.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "LEVEL_STEPS",
    "SCAN_AFTER",
    "MARGIN",
    "SENSITIVITY_MARGINS",
    "HORIZON",
    "Exit",
    "exit_step",
    "sensitivity",
    "train_loss_exit",
    "kaplan_meier",
    "logrank",
    "paired_logrank_permutation",
    "logrank_permutation",
    "fisher_exited",
    "describe",
]

LEVEL_STEPS: tuple[int, int] = (2000, 6000)
"""PRE-REGISTERED: the plateau level is the mean accuracy over evaluations at these steps,
both ends included (after the first fast rise, before any run was seen to leave the plateau)."""

SCAN_AFTER: int = 6000
"""PRE-REGISTERED: only evaluations at steps strictly after this one can be exits."""

MARGIN: float = 0.02
"""PRE-REGISTERED: a run exits when its accuracy is at least this far above the plateau level
(on two evaluations in a row)."""

SENSITIVITY_MARGINS: tuple[float, float] = (0.01, 0.03)
"""PRE-REGISTERED: the margins reported beside :data:`MARGIN` as a sensitivity check only."""

HORIZON: int = 16_000
"""PRE-REGISTERED: the step the plateau runs stop at; runs not exited by then are censored."""

PERMUTATION_MAX_PAIRS = 16
"""The most seed pairs :func:`paired_logrank_permutation` enumerates (2**16 labellings)."""

_Z_TIE = 1e-9
"""Permuted log-rank z values within this of the observed z count as ties (``>=``), so that
labellings equal in exact arithmetic are not split by rounding."""


@dataclass(frozen=True)
class Exit:
    """When (or whether) one run left the plateau.

    ``step`` is the exit step when ``exited``, else the censoring step (the last evaluation's).
    ``threshold`` is ``level + margin`` for the accuracy rule and ``level - margin`` for the
    training-loss rule (:func:`train_loss_exit`); ``accuracy_at_exit`` is the held-out
    accuracy at the exit evaluation (``None`` when censored or for the training-loss rule)."""

    exited: bool
    step: int
    level: float
    margin: float
    threshold: float
    accuracy_at_exit: float | None

    @property
    def event(self) -> int:
        """1 for an exit, 0 for a censored run: the event indicator of survival analysis."""
        return int(self.exited)


def _points(curve: Sequence[Mapping], key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of the items of ``curve`` that have ``key``, sorted by step; raises on
    a non-finite value (naming its step) and on two items at one step."""
    points = []
    for item in curve:
        if key not in item:
            continue
        if "step" not in item:
            raise ValueError(f"curve item {item!r} has {key!r} but no 'step'")
        step, value = int(item["step"]), float(item[key])
        if not math.isfinite(value):
            raise ValueError(f"{key} is {value} (NaN or infinite) at step {step}")
        points.append((step, value))
    points.sort(key=lambda p: p[0])
    steps = [s for s, _ in points]
    repeated = sorted({s for a, s in zip(steps, steps[1:], strict=False) if a == s})
    if repeated:
        raise ValueError(f"curve has two {key!r} values at step(s) {repeated}")
    return points


def exit_step(curve: Sequence[Mapping], margin: float = MARGIN, key: str = "eval_accuracy") -> Exit:
    """The pre-registered plateau exit of one run from its held-out evaluations.

    ``curve`` is ``record["curves"]["eval"]``: dicts with ``"step"`` and ``key`` (items
    without ``key`` are skipped). The level is the mean of ``key`` over the evaluations with
    ``LEVEL_STEPS[0] <= step <= LEVEL_STEPS[1]``; scanning the evaluations after
    :data:`SCAN_AFTER` in step order, the run exits at the first one whose value is
    ``>= level + margin`` and whose next evaluation's value is too. The comparison is exactly
    ``value >= level + margin`` in floating point (``level + margin`` is computed once and
    stored as ``threshold``), so a value equal to the threshold counts as above it. A run with
    no such pair, or whose only candidate is its last evaluation (nothing to confirm it), is
    censored at its last evaluation's step."""
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    if not curve:
        raise ValueError("curve is empty: it has no evaluations")
    points = _points(curve, key)
    if not points:
        raise ValueError(f"no item of the curve has {key!r} (of {len(curve)} items)")
    low, high = LEVEL_STEPS
    window = [value for step, value in points if low <= step <= high]
    if not window:
        raise ValueError(
            f"no {key!r} evaluation in the level window {low} <= step <= {high}; "
            f"steps present: {[s for s, _ in points]}"
        )
    level = math.fsum(window) / len(window)
    threshold = level + margin
    for i, (step, value) in enumerate(points[:-1]):
        if step > SCAN_AFTER and value >= threshold and points[i + 1][1] >= threshold:
            return Exit(True, step, level, margin, threshold, value)
    return Exit(False, points[-1][0], level, margin, threshold, None)


def sensitivity(
    curve: Sequence[Mapping],
    margins: Sequence[float] = (SENSITIVITY_MARGINS[0], MARGIN, SENSITIVITY_MARGINS[1]),
) -> dict[float, Exit]:
    """:func:`exit_step` of one run at each margin (the pre-registered sensitivity check: the
    conclusion should not hinge on the 0.02). A larger margin never exits earlier."""
    return {m: exit_step(curve, margin=m) for m in margins}


def train_loss_exit(
    curve: Sequence[Mapping], reference_step: int, drop: float = 0.3, window: int = 5
) -> Exit:
    """The older detector on the training loss, kept as a secondary line only.

    ``curve`` is ``record["curves"]["train"]`` (items with ``"loss"``). The loss is smoothed by
    the rolling median of the last ``window`` logged points (the upper median for an even
    count); the level is the smoothed loss at the first logged step ``>= reference_step``, and
    the run exits at the first later step whose smoothed loss is ``<= level - drop``, else it
    is censored at the last logged step. ``margin`` is ``drop`` and ``threshold`` is
    ``level - drop``."""
    if not (isinstance(drop, int | float) and math.isfinite(drop) and drop > 0):
        raise ValueError(f"drop must be a finite number > 0, got {drop!r}")
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    points = _points(curve, "loss")
    if not points:
        raise ValueError(f"the training curve has no logged 'loss' (of {len(curve)} items)")
    if points[-1][0] < reference_step:
        raise ValueError(
            f"reference_step {reference_step} is past the last logged step {points[-1][0]}"
        )
    smoothed = []
    for i, (step, _) in enumerate(points):
        recent = sorted(v for _, v in points[max(0, i - window + 1) : i + 1])
        smoothed.append((step, recent[len(recent) // 2]))
    start = next(i for i, (step, _) in enumerate(smoothed) if step >= reference_step)
    level = smoothed[start][1]
    threshold = level - drop
    for step, loss in smoothed[start + 1 :]:
        if loss <= threshold:
            return Exit(True, step, level, drop, threshold, None)
    return Exit(False, smoothed[-1][0], level, drop, threshold, None)


def _survival_data(
    times: Sequence[float], events: Sequence[bool | int], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(times, events)`` arrays: equal lengths, non-empty, finite positive times,
    events 0/1 or bool."""
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name}: times must be a non-empty list of numbers, got {times!r}")
    if len(events) != t.size:
        raise ValueError(f"{name}: times and events differ in length: {t.size} vs {len(events)}")
    if not (np.isfinite(t).all() and (t > 0).all()):
        raise ValueError(f"{name}: times must be finite and > 0, got {times!r}")
    bad = [e for e in events if not (isinstance(e, bool | int | np.integer | np.bool_))]
    bad += [e for e in events if e not in (0, 1)]
    if bad:
        raise ValueError(f"{name}: events must be 0/1 or bool, got {bad[0]!r} in {events!r}")
    return t, np.asarray(events, dtype=bool)


def _as_time(t: float) -> int | float:
    return int(t) if float(t).is_integer() else float(t)


def kaplan_meier(times: Sequence[float], events: Sequence[bool | int]) -> list[tuple[int, float]]:
    """The product-limit estimate of the survival function (here: of staying on the plateau).

    Returns ``[(0, 1.0), (t1, S(t1)), ...]``: one pair per distinct event time, with the
    survival just after it. At a tie, events happen before censorings (a run censored at ``t``
    is still at risk at ``t``), so censored runs leave the risk set after their time."""
    t, e = _survival_data(times, events, "kaplan_meier")
    out: list[tuple[int, float]] = [(0, 1.0)]
    survival = 1.0
    for time in np.unique(t[e]):
        at_risk = int((t >= time).sum())
        deaths = int(((t == time) & e).sum())
        survival *= 1.0 - deaths / at_risk
        out.append((_as_time(time), survival))
    return out


def _logrank_z(
    a_ge: np.ndarray, a_d: np.ndarray, n: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed and expected events of group a and the hypergeometric variance, summed over the
    distinct event times (last axis): ``a_ge`` a's number at risk, ``a_d`` a's events, ``n``
    and ``d`` the pooled numbers at risk and events at each time."""
    expected = d * a_ge / n
    ratio = np.divide(n - d, n - 1, out=np.zeros_like(n, dtype=float), where=n > 1)
    variance = d * (a_ge / n) * (1 - a_ge / n) * ratio
    return a_d.sum(axis=-1), expected.sum(axis=-1), variance.sum(axis=-1)


def _z(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> np.ndarray:
    safe = np.where(variance > 0, variance, 1.0)
    return np.where(variance > 0, (observed - expected) / np.sqrt(safe), 0.0)


def logrank(
    times_a: Sequence[float],
    events_a: Sequence[bool | int],
    times_b: Sequence[float],
    events_b: Sequence[bool | int],
) -> dict[str, float]:
    """The two-group log-rank test with the hypergeometric variance.

    ``z = (O_a - E_a) / sqrt(V)`` is positive when group a has more events (exits) than
    expected under equal hazards, i.e. leaves the plateau sooner; ``p_one_sided`` is the normal
    ``P(Z >= z)`` (testing "a exits sooner than b") and ``p_two_sided`` is ``P(|Z| >= |z|)``.
    With no events at all the variance is 0; then ``z = 0`` and both p-values are 1.0 (the
    variance is also 0 whenever only one group is at risk at every event time, and then
    ``O_a = E_a`` too)."""
    ta, ea = _survival_data(times_a, events_a, "group a")
    tb, eb = _survival_data(times_b, events_b, "group b")
    t, e = np.concatenate([ta, tb]), np.concatenate([ea, eb])
    grid = np.unique(t[e])
    a_ge = (ta[:, None] >= grid).sum(axis=0).astype(float)
    a_d = ((ta[:, None] == grid) & ea[:, None]).sum(axis=0).astype(float)
    n = (t[:, None] >= grid).sum(axis=0).astype(float)
    d = ((t[:, None] == grid) & e[:, None]).sum(axis=0).astype(float)
    observed, expected, variance = _logrank_z(a_ge, a_d, n, d)
    z = float(_z(observed, expected, variance))
    no_test = not variance > 0
    return {
        "observed_a": float(observed),
        "expected_a": float(expected),
        "variance": float(variance),
        "z": z,
        "p_one_sided": 1.0 if no_test else float(scipy_stats.norm.sf(z)),
        "p_two_sided": 1.0 if no_test else float(2 * scipy_stats.norm.sf(abs(z))),
    }


def paired_logrank_permutation(
    pairs: Sequence[tuple[tuple[float, bool | int], tuple[float, bool | int]]],
) -> dict[str, float]:
    """The PRIMARY pre-registered test: one-sided log-rank of arm a (``lsh_paper``) against arm
    b (the baseline), p by exact permutation within seed pairs.

    ``pairs`` holds one ``((time_a, event_a), (time_b, event_b))`` per seed; the two runs of a
    seed share initial weights, data order and masks, so under the null hypothesis their arm
    labels are exchangeable within the pair. The statistic is :func:`logrank`'s z; the exact
    one-sided p-value is the share of all ``2**n`` within-pair label swaps (the observed
    labelling included, so ``p >= 2**-n``) whose z is ``>=`` the observed one (ties within
    1e-9 count). The asymptotic ``p_one_sided`` of :func:`logrank` is returned beside it; with
    5 pairs it is the poorer of the two."""
    n_pairs = len(pairs)
    if not 1 <= n_pairs <= PERMUTATION_MAX_PAIRS:
        raise ValueError(f"pairs must hold 1 to {PERMUTATION_MAX_PAIRS} seed pairs, got {n_pairs}")
    for pair in pairs:
        if len(pair) != 2 or any(len(run) != 2 for run in pair):
            raise ValueError(
                f"each pair must be ((time_a, event_a), (time_b, event_b)), got {pair!r}"
            )
    ta, ea = _survival_data([p[0][0] for p in pairs], [p[0][1] for p in pairs], "arm a")
    tb, eb = _survival_data([p[1][0] for p in pairs], [p[1][1] for p in pairs], "arm b")
    asymptotic = logrank(ta, ea, tb, eb)
    t, e = np.concatenate([ta, tb]), np.concatenate([ea, eb])
    grid = np.unique(t[e])
    n = (t[:, None] >= grid).sum(axis=0).astype(float)  # pooled: the same for every labelling
    d = ((t[:, None] == grid) & e[:, None]).sum(axis=0).astype(float)
    # swaps[k, j] = 1 when labelling k gives pair j's b run to arm a (row 0: the observed one)
    codes = np.arange(2**n_pairs)
    swaps = ((codes[:, None] >> np.arange(n_pairs)) & 1).astype(float)
    a_at_risk, b_at_risk = (ta[:, None] >= grid).astype(float), (tb[:, None] >= grid).astype(float)
    a_event = ((ta[:, None] == grid) & ea[:, None]).astype(float)
    b_event = ((tb[:, None] == grid) & eb[:, None]).astype(float)
    a_ge = (1 - swaps) @ a_at_risk + swaps @ b_at_risk
    a_d = (1 - swaps) @ a_event + swaps @ b_event
    z_all = _z(*_logrank_z(a_ge, a_d, n, d))
    z = float(z_all[0])
    hits = int((z_all >= z - _Z_TIE).sum())
    return {
        "z": z,
        "p_exact_one_sided": hits / codes.size,
        "permutations": int(codes.size),
        "n_pairs": n_pairs,
        "p_one_sided": asymptotic["p_one_sided"],
    }


PERMUTATION_MAX_RUNS = 20


def logrank_permutation(
    times_a: Sequence[float],
    events_a: Sequence[bool | int],
    times_b: Sequence[float],
    events_b: Sequence[bool | int],
) -> dict[str, float]:
    """The PRIMARY pre-registered test: one-sided log-rank of arm a (``lsh_paper``) against arm
    b (the baseline), p by exact permutation of the arm labels over all runs.

    Under the null hypothesis every assignment of ``len(times_a)`` of the pooled runs to arm a
    is equally likely; the exact one-sided p-value is the share of all ``C(n_a + n_b, n_a)``
    assignments (the observed one included, so ``p >= 1 / C``) whose :func:`logrank` z is
    ``>=`` the observed one (ties within 1e-9 count). With 5 runs per arm, ``p >= 1/252``."""
    ta, ea = _survival_data(times_a, events_a, "arm a")
    tb, eb = _survival_data(times_b, events_b, "arm b")
    total = ta.size + tb.size
    if total > PERMUTATION_MAX_RUNS:
        raise ValueError(
            f"at most {PERMUTATION_MAX_RUNS} runs in all for the exact test, got {total}"
        )
    asymptotic = logrank(ta, ea, tb, eb)
    t, e = np.concatenate([ta, tb]), np.concatenate([ea, eb])
    grid = np.unique(t[e])
    n = (t[:, None] >= grid).sum(axis=0).astype(float)
    d = ((t[:, None] == grid) & e[:, None]).sum(axis=0).astype(float)
    chosen = np.zeros((math.comb(total, ta.size), total))
    for row, picks in enumerate(itertools.combinations(range(total), ta.size)):
        chosen[row, list(picks)] = 1.0  # row 0: the observed labelling (the first n_a runs)
    at_risk = (t[:, None] >= grid).astype(float)
    event = ((t[:, None] == grid) & e[:, None]).astype(float)
    z_all = _z(*_logrank_z(chosen @ at_risk, chosen @ event, n, d))
    z = float(z_all[0])
    return {
        "z": z,
        "p_exact_one_sided": int((z_all >= z - _Z_TIE).sum()) / z_all.size,
        "permutations": int(z_all.size),
        "runs": int(total),
        "p_one_sided": asymptotic["p_one_sided"],
    }


def fisher_exited(exited_a: int, n_a: int, exited_b: int, n_b: int) -> dict:
    """One-sided Fisher's exact test on "exited by :data:`HORIZON`": does arm a exit more often
    than arm b? (A secondary line: it ignores when the runs exit.) Returns the 2x2 table
    ``((exited_a, stayed_a), (exited_b, stayed_b))``, scipy's sample odds ratio
    ``exited_a * stayed_b / (stayed_a * exited_b)`` (``inf`` when only the denominator is 0)
    and ``p_one_sided``."""
    for name, exited, n in (("a", exited_a, n_a), ("b", exited_b, n_b)):
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n_{name} must be an integer >= 1, got {n!r}")
        if not (isinstance(exited, int) and 0 <= exited <= n):
            raise ValueError(f"exited_{name} must be an integer in 0..{n}, got {exited!r}")
    table = ((exited_a, n_a - exited_a), (exited_b, n_b - exited_b))
    odds, p = scipy_stats.fisher_exact(table, alternative="greater")
    return {"table": table, "odds_ratio": float(odds), "p_one_sided": float(p)}


def describe(exit: Exit) -> str:
    """One short phrase for a notebook or a report: where the run exits and why, or where it is
    censored. An :class:`Exit` whose threshold lies below its level is read as the
    training-loss rule (:func:`train_loss_exit`)."""
    margin = f"{exit.margin:g}"
    if exit.threshold < exit.level:  # the training-loss rule: a drop below the level
        rule = f"<= level {exit.level:.3f} - {margin}"
        if exit.exited:
            return f"exits at step {exit.step:,} (smoothed training loss {rule})"
        return f"censored at step {exit.step:,} (smoothed training loss never {rule})"
    if exit.exited:
        accuracy = "" if exit.accuracy_at_exit is None else f"accuracy {exit.accuracy_at_exit:.3f} "
        return (
            f"exits at step {exit.step:,} ({accuracy}>= level {exit.level:.3f} + {margin}, "
            "confirmed at the next evaluation)"
        )
    return (
        f"censored at step {exit.step:,} (never >= level {exit.level:.3f} + {margin} "
        "on two evaluations in a row)"
    )
