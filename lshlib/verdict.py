"""The verdict's runs (issue 13, notebook 06): every seed and control, as one cached plan.

:func:`plan` lists the run configurations of each group at a scale (seeds from
:data:`lshlib.scales.VERDICT`):

* ``pretraining``: MLM of the three variants, one run per pretraining seed;
* ``sst2`` and ``squad``: the three variants and the ``scratch`` control, one run per fine-tuning
  seed, each starting from its variant's pretraining run of the seed at the same position
  (cycling when there are more fine-tuning seeds than pretraining seeds);
* ``controls``: SST-2 fine-tuning of the LSH variants and the attention controls
  (:data:`lshlib.modeling.CONTROL_VARIANTS`), all from the *baseline's* pretrained checkpoint, so
  only the attention used in fine-tuning differs;
* ``paper_settings``: SST-2 with the paper's fine-tuning settings
  (:data:`lshlib.scales.PAPER_FINETUNING`) for the baseline, ``lsh_paper`` and ``scratch``.

:func:`run_plan` runs what is missing (each run cached and resumable like any other) and returns
the records; :func:`seed_values` and :func:`compare` turn them into per-seed metrics and paired
differences with intervals (:mod:`lshlib.stats`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from tqdm.std import tqdm

from lshlib import stats, training
from lshlib.locality import trained_locality
from lshlib.modeling import CONTROL_VARIANTS, VARIANTS, load_model
from lshlib.per_example import example_scores
from lshlib.scales import LONG, PAPER_FINETUNING, SCALES, get_scale, sizes
from lshlib.training import SCRATCH, RunConfig

__all__ = [
    "GROUPS",
    "CONTROL_PAIRS",
    "plan",
    "plan_summary",
    "run_plan",
    "seed_values",
    "compare",
    "generalisation_gap",
    "control_rows",
    "locality_table",
    "long_plan",
    "run_long",
]

GROUPS = ("pretraining", "sst2", "squad", "controls", "paper_settings")
MAIN = (*VARIANTS, SCRATCH)


def _finetune(task: str, variants: Iterable[str], seeds, mlm_seeds, scale: str, source=None,
              **overrides) -> list[RunConfig]:  # fmt: skip
    """Fine-tuning runs; ``source`` names the variant whose pretraining run they start from
    (``None``: their own variant's)."""
    configs = []
    for i, seed in enumerate(seeds):
        mlm_seed = mlm_seeds[i % len(mlm_seeds)]
        for variant in variants:
            extra = dict(overrides)
            if variant != SCRATCH:
                pretrained = training.run_config("mlm", source or variant, scale, mlm_seed)
                extra["pretrained"] = pretrained.name
            configs.append(training.run_config(task, variant, scale, seed, **extra))
    return configs


def plan(scale: str | None = None) -> dict[str, list[RunConfig]]:
    """Every run of the verdict at ``scale``, by group (see the module)."""
    scale = get_scale(scale)
    v = sizes("verdict", scale)
    mlm = [training.run_config("mlm", var, scale, s) for s in v["mlm_seeds"] for var in VARIANTS]
    controls = ("lsh_paper", "lsh_masked", *CONTROL_VARIANTS)
    return {
        "pretraining": mlm,
        "sst2": _finetune("sst2", MAIN, v["sst2_seeds"], v["mlm_seeds"], scale),
        "squad": _finetune("squad", MAIN, v["squad_seeds"], v["mlm_seeds"], scale),
        "controls": _finetune(
            "sst2", controls, v["control_seeds"], v["mlm_seeds"], scale, source="baseline"
        ),  # fmt: skip
        "paper_settings": _finetune(
            "sst2",
            ("baseline", "lsh_paper", SCRATCH),
            v["control_seeds"],
            v["mlm_seeds"],
            scale,
            **PAPER_FINETUNING,
        ),  # fmt: skip
    }


def run_plan(
    scale: str | None = None, groups: Iterable[str] = GROUPS, progress: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Run (or reuse) every run of ``groups``; returns ``{group: [record, ...]}`` in plan order.
    Pretraining runs go first, so fine-tuning never waits on a missing checkpoint."""
    groups = list(groups)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; valid groups: {', '.join(GROUPS)}")
    runs = plan(scale)
    todo = [(g, c) for g in GROUPS if g in groups for c in runs[g]]
    records: dict[str, list[dict[str, Any]]] = {g: [] for g in groups}
    # a text bar (a notebook widget is saved stuck at 0%); its last state is the saved line
    bar = tqdm(todo, desc="verdict runs", disable=not progress, unit="run", mininterval=10)
    for group, config in bar:
        bar.set_postfix_str(config.name, refresh=False)
        records[group].append(training.run(config, progress=False, chain=True))
    return records


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


def _per_example(record: dict, key: str) -> list[float]:
    config = RunConfig(**record["config"])
    return example_scores(config)[key]


def compare(
    records: list[dict], metric: Metric, reference: str = "baseline", example_key: str | None = None
) -> list[dict[str, Any]]:
    """One row per variant: the mean and spread of ``metric`` over seeds and, against
    ``reference``, the paired difference over shared seeds (t interval) and, when
    ``example_key`` names a per-example score (``correct``, ``f1``), a paired bootstrap over the
    test examples of the first shared seed's runs."""
    values = seed_values(records, metric)
    if reference not in values:
        raise ValueError(f"reference {reference!r} has no runs; variants: {sorted(values)}")
    by_run = {(r["config"]["variant"], r["config"]["seed"]): r for r in records}
    rows = []
    for variant, seeds in values.items():
        row: dict[str, Any] = {"variant": variant, **stats.seed_summary(list(seeds.values()))}
        if variant != reference:
            diff = stats.paired_seed_difference(seeds, values[reference])
            row.update({f"diff_{k}": diff[k] for k in ("mean", "low", "high")})
            row["seeds_say"] = stats.in_words(diff["low"], diff["high"])
            shared = sorted(set(seeds) & set(values[reference]))
            if example_key and shared:
                a = _per_example(by_run[(variant, shared[0])], example_key)
                b = _per_example(by_run[(reference, shared[0])], example_key)
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


def plan_summary(runs: dict[str, list[RunConfig]]) -> list[dict[str, Any]]:
    """One row per group: its task, variants, seeds and number of runs."""
    return [
        {
            "group": group,
            "task": ", ".join(sorted({c.task for c in configs})),
            "variants": ", ".join(dict.fromkeys(c.variant for c in configs)),
            "seeds": ", ".join(str(s) for s in dict.fromkeys(c.seed for c in configs)),
            "runs": len(configs),
        }
        for group, configs in runs.items()
    ]


def locality_table(configs: Iterable[RunConfig], scale: str | None = None) -> list[dict]:
    """:func:`lshlib.locality.trained_locality` of each finished run's final model (sizes from
    the ``verdict`` table), one row per (run, layer, head)."""
    v = sizes("verdict", scale)
    rows = []
    for config in configs:
        with training.quiet_bars():
            model = load_model(training.run_dir(config) / "final", config.task)
        for row in trained_locality(model, v["locality_sentences"], v["locality_draws"],
                                    scale=scale):  # fmt: skip
            rows.append({"variant": config.variant, "seed": config.seed, **row})
    return rows


def long_plan(scale: str | None = None) -> dict[str, list[RunConfig]]:
    """The long runs (``make long``): the plateau runs of the baseline and ``lsh_paper``, and the
    long-sequence runs of the baseline (SDPA) and ``lsh_bucketed`` (:data:`lshlib.scales.LONG`);
    the first pretraining seed."""
    scale = get_scale(scale)
    seed = sizes("verdict", scale)["mlm_seeds"][0]
    settings = LONG[scale]
    return {
        "plateau": [
            training.run_config("mlm", v, scale, seed, **settings["plateau"])
            for v in ("baseline", "lsh_paper")
        ],
        "long_sequence": [
            training.run_config("mlm", v, scale, seed, **settings["long_sequence"])
            for v in ("baseline", "lsh_bucketed")
        ],
    }


def run_long(scale: str | None = None, progress: bool = True) -> dict[str, list[dict]]:
    """Run (or reuse) the long runs; each shows its own progress bar."""
    return {
        group: [training.run(c, progress=progress) for c in configs]
        for group, configs in long_plan(scale).items()
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m lshlib.verdict [--scale S] [--long]``: run the verdict's plan (or the long
    runs) from the command line, as ``make long`` does."""
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--scale", default=None, choices=SCALES)
    parser.add_argument("--long", action="store_true", help="the plateau and long-sequence runs")
    args = parser.parse_args(argv)
    if args.long:
        run_long(args.scale)
    else:
        run_plan(args.scale)


if __name__ == "__main__":
    main()
