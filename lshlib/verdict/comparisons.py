"""Comparisons over the verdict's records: per-unit metric values, differences with intervals,
the attention controls' rows, and the locality tables of trained models.

The unit of a comparison is what varies independently (:func:`unit_of`): a pretraining run for
claims about pretraining, the fine-tuning seed for a model trained from scratch; fine-tuning
seeds of one pretraining run are averaged first. Intervals and tests come from
:mod:`lshlib.experiments.stats`. :func:`locality_table` is the one function here that loads
models: it fills the locality cache that ``python -m lshlib.verdict`` writes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lshlib import safeio, training
from lshlib.experiments import stats
from lshlib.experiments.locality import trained_locality
from lshlib.modeling import load_model
from lshlib.paths import results_dir
from lshlib.scales import sizes
from lshlib.training import scoring
from lshlib.training.config import RunConfig
from lshlib.verdict.long import long_plan
from lshlib.verdict.planning import plan

Metric = str | Callable[[dict], float]


def generalisation_gap(record: dict) -> float:
    """Validation loss minus the last training loss: how much worse held-out data fares."""
    return record["final"]["validation_loss"] - record["final"]["train_loss_last"]


def seed_values(records: list[dict], metric: Metric) -> dict[str, dict[int, float]]:
    """``{variant: {seed: value}}`` from a group's records; ``metric`` names a key of a record's
    ``final`` metrics or is a function of the record (:func:`generalisation_gap`)."""
    out: dict[str, dict[int, float]] = {}
    for record in records:
        config = record["config"]
        value = metric(record) if callable(metric) else record["final"][metric]
        out.setdefault(config["variant"], {})[config["seed"]] = value
    return out


def _examples(record: dict, key: str) -> list[float] | None:
    """The record's own per-example scores (draw 0, :mod:`lshlib.training.scoring`), or ``None`` for
    an older record that holds none: no model is ever reloaded to re-score it."""
    try:
        return scoring.examples_of(record).get(key)
    except KeyError:
        return None


@functools.lru_cache(maxsize=8)
def _pretraining_configs(scale: str) -> dict[str, dict]:
    """The configurations of every pretraining run a plan names, by run name."""
    configs = [*plan(scale)["pretraining"], *long_plan(scale)["plateau"]]
    return {c.name: c.to_dict() for c in configs}


def unit_of(record: dict) -> tuple[str, int]:
    """The independent unit a record belongs to and the seed that pairs it: a fine-tuning run
    that starts from a pretrained model belongs to that pretraining run (its fine-tuning seeds are
    not independent of each other for a claim about pretraining); any other run (MLM, scratch) is
    its own unit. The pretraining run's identity comes from its configuration (the record's
    ``pretrained_run`` or the plan's), never from parsing its name."""
    config = record["config"]
    if config["task"] == "mlm" or config.get("pretrained") is None:
        return ("run", int(config["seed"]))
    made = record.get("pretrained_run", {}).get("config")
    if made is None:
        made = _pretraining_configs(config["scale"]).get(config["pretrained"])
    if made is None:
        raise ValueError(
            f"record {record.get('name')!r}: its pretraining run {config['pretrained']!r} is in "
            "no plan and the record does not carry its configuration"
        )
    return ("pretraining run", int(made["seed"]))


def unit_values(records: list[dict], metric: Metric) -> dict[str, dict[int, list[float]]]:
    """``{variant: {unit seed: [value per run of that unit]}}`` (:func:`unit_of`)."""
    out: dict[str, dict[int, list[float]]] = {}
    for record in records:
        value = metric(record) if callable(metric) else record["final"][metric]
        out.setdefault(record["config"]["variant"], {}).setdefault(unit_of(record)[1], []).append(
            value
        )
    return out


def _units_said(records: list[dict], variant: str) -> tuple[str, str]:
    mine = [r for r in records if r["config"]["variant"] == variant]
    kind = unit_of(mine[0])[0]
    per_unit: dict[int, int] = {}
    for r in mine:
        per_unit[unit_of(r)[1]] = per_unit.get(unit_of(r)[1], 0) + 1
    units = len(per_unit)
    if kind == "pretraining run":
        most = max(per_unit.values())
        runs = f"{units} pretraining runs" + (
            f" x {len(mine)} fine-tuning seeds" if most > 1 else ", one fine-tuning seed each"
        )
        return kind, runs
    return kind, f"{units} runs"


def compare(
    records: list[dict], metric: Metric, reference: str = "baseline", example_key: str | None = None
) -> list[dict[str, Any]]:
    """One row per variant: the mean and spread of ``metric`` over its independent units
    (:func:`unit_of`: pretraining runs for fine-tuning from a pretrained model, where fine-tuning
    seeds of one pretraining run are averaged first), and against ``reference`` the difference
    with its 95% interval and two-sided p: a paired t over units of the same kind and seed
    (shared initial weights, data order and masks; df = units - 1), Welch's t otherwise (e.g.
    ``scratch`` against a pretrained model). With ``example_key`` (``correct``, ``f1``) and
    records that hold per-example predictions, a paired bootstrap over the test examples of the
    first shared unit's first runs; older records hold none, and nothing is re-scored."""
    values = unit_values(records, metric)
    if reference not in values:
        raise ValueError(f"reference {reference!r} has no runs; variants: {sorted(values)}")
    means = {v: {u: sum(xs) / len(xs) for u, xs in units.items()} for v, units in values.items()}
    rows = []
    for variant, units in means.items():
        kind, said = _units_said(records, variant)
        row: dict[str, Any] = {
            "variant": variant,
            **stats.seed_summary(list(units.values())),
            "unit": kind,
            "n_desc": said,
        }
        if variant != reference:
            ref_kind, ref_said = _units_said(records, reference)
            row["n_compared"] = said if kind == ref_kind else f"{said} against {ref_said}"
            if kind == ref_kind:
                diff = stats.paired_seed_difference(units, means[reference])
                row["test"] = f"paired t over {kind}s"
            else:
                a, b = list(units.values()), list(means[reference].values())
                if min(len(a), len(b)) < 2:  # no spread on one side: the difference alone
                    mean = sum(a) / len(a) - sum(b) / len(b)
                    diff = {"mean": mean, "low": math.nan, "high": math.nan, "p": math.nan}
                else:
                    diff = stats.welch_difference(a, b)
                row["test"] = "Welch t (unpaired: nothing shared but the seed number)"
            row.update({f"diff_{k}": diff[k] for k in ("mean", "low", "high")})
            row["p"] = diff.get("p", math.nan)
            row["seeds_say"] = stats.in_words(diff["low"], diff["high"])
            shared = [u for u in units if u in means[reference]]
            if example_key and shared and kind == ref_kind:
                first = {r["config"]["variant"]: r for r in records if unit_of(r)[1] == shared[0]}
                a = _examples(first.get(variant, {}), example_key) if variant in first else None
                b = _examples(first[reference], example_key) if reference in first else None
                if a is not None and b is not None:
                    boot = stats.paired_bootstrap(a, b)
                    row.update({"boot_low": boot["low"], "boot_high": boot["high"]})
        rows.append(row)
    return rows


# Each control against the variant it changes one thing of (:data:`lshlib.modeling`).
CONTROL_PAIRS = (
    ("random_paper", "lsh_paper", "locality (random pairs of the same density)"),
    ("random_masked", "lsh_masked", "locality, masked mode"),
    ("lsh_paper_fixed", "lsh_paper", "hashes redrawn at every call (vs fixed)"),
    ("lsh_paper_unmirrored", "lsh_paper", "mirrored scores (vs each pair as itself)"),
    ("lsh_masked", "lsh_paper", "zero scores (paper) vs exclusion (masked)"),
)


def control_rows(records: list[dict], metric: Metric = "test_accuracy") -> list[dict[str, Any]]:
    """Each control minus the variant it departs from (:data:`CONTROL_PAIRS`), paired over
    seeds, on the ``controls`` group (every run fine-tuned from the baseline's checkpoint)."""
    rows = []
    for control, reference, what in CONTROL_PAIRS:
        pair = [r for r in records if r["config"]["variant"] in (control, reference)]
        found = {r["config"]["variant"] for r in pair}
        if found != {control, reference}:
            continue
        row = next(r for r in compare(pair, metric, reference) if r["variant"] == control)
        rows.append({"control": control, "against": reference, "tests": what, **row})
    return rows


def only(records: list[dict], variants: Iterable[str]) -> list[dict]:
    """The records of ``variants``."""
    keep = set(variants)
    return [r for r in records if r["config"]["variant"] in keep]


def row(rows: list[dict], variant: str) -> dict:
    """The row of ``variant`` among :func:`compare` or :func:`locality_summary` rows."""
    found = [r for r in rows if r.get("variant") == variant]
    if not found:
        raise ValueError(f"no row for {variant!r}; variants: {[r.get('variant') for r in rows]}")
    return found[0]


def locality_path(config: RunConfig) -> Path:
    """Where :func:`locality_table` caches the rows of ``config``'s run."""
    return results_dir(config.scale) / "locality" / f"{config.name}.json"


def locality_table(
    configs: Iterable[RunConfig], scale: str | None = None, compute: bool = False
) -> list[dict]:
    """:func:`lshlib.experiments.locality.trained_locality` of each finished run's final model
    (sizes from the ``verdict`` table), one row per (run, layer, head). Each run's rows are cached
    in ``results/<scale>/locality/<run>.json`` with the sizes and the record's ``finished_at``.
    Only ``compute=True`` (``python -m lshlib.verdict --derived``) loads a model to fill a missing
    or stale cache; readers (notebook 06) get a :class:`lshlib.safeio.DerivedFileError` naming
    that command instead."""
    v = sizes("verdict", scale)
    key = {"sentences": v["locality_sentences"], "draws": v["locality_draws"]}
    rows = []
    for config in configs:
        path = locality_path(config)
        stamp = (training.load_record(config) or {}).get("finished_at")
        cached = safeio.load_json_dict(path)
        if cached and cached.get("key") == key and cached.get("finished") == stamp:
            rows += cached["rows"]
            continue
        if not compute:
            raise safeio.DerivedFileError(
                f"{path} is missing or stale for run {config.name}; {safeio.DERIVED_BY} "
                "computes it from the run's model"
            )
        final = training.run_dir(config) / "final"
        if not (final / "config.json").is_file():
            raise FileNotFoundError(
                f"run {config.name} has no final model under {final.parent} and no cached "
                f"locality rows at {path}; train it first (python -m lshlib.verdict)"
            )
        with training.quiet_bars():
            model = load_model(final, config.task)
        mine = [
            {"variant": config.variant, "seed": config.seed, **row}
            for row in trained_locality(model, key["sentences"], key["draws"], scale=scale)
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        safeio.atomic_write_json(
            path, {"run": config.name, "finished": stamp, "key": key, "rows": mine}, indent=1
        )
        rows += mine
    return rows


def locality_summary(rows: list[dict]) -> list[dict[str, Any]]:
    """:func:`locality_table` rows averaged over layers, heads and seeds, one row per variant
    (plain means: every head of every layer counts the same)."""
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    keys = [k for k in rows[0] if k not in ("variant", "seed", "layer", "head")] if rows else []
    return [
        {"variant": v, **{k: sum(r[k] for r in rs) / len(rs) for k in keys}}
        for v, rs in by_variant.items()
    ]
